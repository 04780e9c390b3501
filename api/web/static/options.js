// The conversion options of POST /upload. The form is generated from this table: a new API
// option is one line here. Kinds: "select" (choices), "text", "number", "checkbox", "file".
// Empty choices leave the option to the server (its default, or "as the source").
const TIME = "^(\\d{1,6}(\\.\\d{1,3})?|\\d{1,2}:[0-5]\\d:[0-5]\\d(\\.\\d{1,3})?)$";
export const OPTIONS = [
  { name: "bitrate", label: "Bitrate", kind: "select",
    choices: [["", "192k (default)"], "128k", "192k", "256k", "320k"], default: "",
    hint: "constant bitrate; higher: better sound, larger file" },
  { name: "quality", label: "VBR quality", kind: "select",
    choices: [["", "off"], ["0", "0 (best)"], "1", "2", "3", "4", "5", "6", "7", "8", ["9", "9 (smallest)"]],
    default: "", hint: "variable bitrate instead of a bitrate" },
  { name: "sample_rate", label: "Sample rate (Hz)", kind: "select",
    choices: [["", "as the source"], "8000", "11025", "12000", "16000", "22050", "24000", "32000", "44100", "48000"],
    default: "" },
  { name: "channels", label: "Channels", kind: "select",
    choices: [["", "as the source"], ["1", "mono"], ["2", "stereo"]], default: "" },
  { name: "start", label: "Start", kind: "text", pattern: TIME, placeholder: "0 or 00:00:00",
    hint: "seconds or HH:MM:SS(.mmm)" },
  { name: "end", label: "End", kind: "text", pattern: TIME, placeholder: "the end",
    hint: "after the start" },
  { name: "loudness", label: "Loudness (LUFS)", kind: "number", min: -30, max: -5, step: 0.5,
    placeholder: "off", hint: "e.g. -16 for podcasts, -14 for music streaming" },
  { name: "title", label: "Title", kind: "text", maxlength: 200, placeholder: "the file name" },
  { name: "artist", label: "Artist", kind: "text", maxlength: 200 },
  { name: "album", label: "Album", kind: "text", maxlength: 200 },
  { name: "cover", label: "Cover", kind: "select",
    choices: [["none", "none"], ["frame", "a still from the video"]], default: "none" },
  { name: "track", label: "Audio track", kind: "number", min: 0, step: 1, placeholder: "0",
    hint: "for videos with several languages, counting from 0" },
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
  for (const attribute of ["min", "max", "step", "placeholder", "accept", "pattern", "maxlength"]) {
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
