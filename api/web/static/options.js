// The conversion options of POST /upload as the server describes them in /openapi.json: a
// JSON Schema per multipart field, derived from the one description of the options on the
// server (core/domain/options.py), with a form's words as x- extensions (x-label, x-unit,
// x-absent, x-choice-labels). One labelled control per option: a new option of the API
// appears here with nothing to change.
const LIST_AT_MOST = 12; // an integer range this short is offered as a list

/** The options of POST /upload in an OpenAPI document, as [{name, schema}], in its order. */
export function uploadOptions(spec) {
  const form = spec?.paths?.["/upload"]?.post?.requestBody?.content?.["multipart/form-data"];
  return Object.entries(form?.schema?.properties || {})
    .filter(([, schema]) => schema.format !== "binary") // the file itself
    .map(([name, schema]) => ({ name, schema }));
}

/** Fill `container` with one labelled control per option, or say that there are none. */
export function renderOptions(container, options) {
  container.replaceChildren();
  if (!options.length) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = "The options could not be loaded: uploads use the server's defaults.";
    container.append(note);
    return;
  }
  for (const { name, schema } of options) {
    const id = `option-${name}`;
    const field = document.createElement("div");
    field.className = "field";
    const label = document.createElement("label");
    label.htmlFor = id;
    const unit = schema["x-unit"] ? ` (${schema["x-unit"]})` : "";
    label.textContent = (schema["x-label"] || name) + unit;
    const control = makeControl(schema);
    control.id = id;
    control.name = name;
    field.append(label, control);
    if (schema.description) {
      const hint = document.createElement("small");
      hint.id = `${id}-hint`;
      hint.textContent = schema.description.replaceAll("`", ""); // CommonMark, shown as text
      control.setAttribute("aria-describedby", hint.id);
      field.append(hint);
    }
    if (Array.isArray(schema["x-formats"])) field.dataset.formats = schema["x-formats"].join(" ");
    container.append(field);
  }
  const format = container.querySelector("[name=format]");
  if (format) {
    format.addEventListener("change", () => showForFormat(container, format.value));
    showForFormat(container, format.value);
  }
}

/** Only the options the chosen format takes are shown and sent (x-formats of each). */
function showForFormat(container, format) {
  for (const field of container.querySelectorAll(".field[data-formats]")) {
    const applies = !format || field.dataset.formats.split(" ").includes(format);
    field.hidden = !applies;
    for (const control of field.querySelectorAll("select, input")) control.disabled = !applies;
  }
}

function choicesOf(schema) {
  if (schema.enum) return schema.enum.map(String);
  const { minimum: low, maximum: high } = schema;
  if (schema.type !== "integer" || low === undefined || high === undefined) return null;
  if (high - low >= LIST_AT_MOST) return null;
  return Array.from({ length: high - low + 1 }, (_, i) => String(low + i));
}

function makeControl(schema) {
  const absent = schema["x-absent"];
  const choices = choicesOf(schema);
  if (choices) {
    const select = document.createElement("select");
    // Left out, the server decides (its default, or "as the source"); else start at the default.
    if (absent !== undefined) select.append(new Option(absent, "", false, true));
    const words = schema["x-choice-labels"] || {};
    for (const value of choices) {
      const chosen = absent === undefined && value === String(schema.default);
      select.append(new Option(words[value] || value, value, false, chosen));
    }
    return select;
  }
  const input = document.createElement("input");
  const number = schema.type === "integer" || schema.type === "number";
  input.type = number ? "number" : "text";
  const attributes = {
    min: schema.minimum,
    max: schema.maximum,
    step: number ? (schema.type === "integer" ? 1 : "any") : undefined,
    pattern: schema.pattern,
    maxlength: schema.maxLength,
    placeholder: absent ?? schema.default,
  };
  for (const [attribute, value] of Object.entries(attributes)) {
    if (value !== undefined) input.setAttribute(attribute, value);
  }
  return input;
}

/** The chosen values as [name, text] pairs; empty fields are left to the server. */
export function readOptions(form, options) {
  const values = [];
  for (const { name } of options) {
    const control = form.elements.namedItem(name);
    if (control && !control.disabled && control.value !== "") values.push([name, control.value]);
  }
  return values;
}
