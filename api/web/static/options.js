// The conversion options of POST /upload. The form is generated from this table: a new API
// option is one line here. Kinds: "select" (choices), "text", "number", "checkbox", "file".
export const OPTIONS = [
  { name: "bitrate", label: "Bitrate", kind: "select", choices: ["128k", "192k", "256k", "320k"],
    default: "192k", hint: "higher: better sound, larger file" },
];

/** Fill `container` with one labelled control per option. */
export function renderOptions(container, options = OPTIONS) {
  container.replaceChildren();
  for (const option of options) {
    const id = `option-${option.name}`;
    const field = document.createElement("div");
    field.className = "field";
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = option.label;
    const control = makeControl(option);
    control.id = id;
    control.name = option.name;
    field.append(label, control);
    if (option.hint) {
      const hint = document.createElement("small");
      hint.id = `${id}-hint`;
      hint.textContent = option.hint;
      control.setAttribute("aria-describedby", hint.id);
      field.append(hint);
    }
    container.append(field);
  }
}

function makeControl(option) {
  if (option.kind === "select") {
    const select = document.createElement("select");
    for (const choice of option.choices) {
      const [value, text] = Array.isArray(choice) ? choice : [choice, choice];
      select.append(new Option(text, value, false, value === option.default));
    }
    return select;
  }
  const input = document.createElement("input");
  input.type = option.kind === "number" ? "number" : option.kind === "checkbox" ? "checkbox"
    : option.kind === "file" ? "file" : "text";
  for (const attribute of ["min", "max", "step", "placeholder", "accept", "pattern"]) {
    if (option[attribute] !== undefined) input.setAttribute(attribute, option[attribute]);
  }
  if (option.kind === "checkbox") input.checked = Boolean(option.default);
  else if (option.kind !== "file" && option.default !== undefined) input.value = option.default;
  return input;
}

/** The chosen values as [name, string-or-File] pairs; empty fields are left to the server. */
export function readOptions(form, options = OPTIONS) {
  const values = [];
  for (const option of options) {
    const control = form.elements.namedItem(option.name);
    if (!control) continue;
    if (option.kind === "checkbox") values.push([option.name, control.checked ? "true" : "false"]);
    else if (option.kind === "file") { if (control.files[0]) values.push([option.name, control.files[0]]); }
    else if (control.value !== "") values.push([option.name, control.value]);
  }
  return values;
}
