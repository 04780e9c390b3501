// The vid2mp3 page: sign in, drop videos, watch the jobs. Plain ES modules, no build step.
import { Session, describeError } from "./api.js";
import { JobList } from "./jobs.js";
import { readOptions, renderOptions, uploadOptions } from "./options.js";
import { pickTransport } from "./uploads.js";

const $ = (id) => document.getElementById(id);
const UPLOADS_AT_ONCE = 2;
const CONFIRM_KEY = "vid2mp3.confirm-email";

const session = new Session();
const jobs = new JobList({
  session, list: $("jobs"), empty: $("jobs-empty"), linksNote: $("links-note"), notify,
});
let capabilities = {};
let options = []; // the upload's options, as the server describes them
const waiting = [];
let uploading = 0;

function notify(message, kind = "info") {
  const notice = $("notice");
  notice.textContent = message;
  notice.hidden = !message;
  notice.classList.toggle("error", kind === "error");
}

/** The server's OpenAPI document (what it offers beyond the basics, the upload's options), or
 * null when it cannot be read. */
async function describedApi() {
  try {
    const response = await fetch("/openapi.json", { credentials: "omit" });
    return await response.json();
  } catch {
    return null;
  }
}

function capabilitiesOf(spec) {
  if (!spec) return {}; // unknown: each action tries and falls back
  const paths = Object.keys(spec.paths || {});
  return {
    links: paths.includes("/jobs/{job_id}/links"),
    cancel: paths.includes("/jobs/{job_id}/cancel"),
    events: paths.includes("/jobs/{job_id}/events/ticket"),
    tus: paths.some((path) => path.replace(/\/$/, "") === "/uploads"),
  };
}

function showSignIn() {
  jobs.stop();
  $("uploads").replaceChildren();
  waiting.length = 0;
  $("work-view").hidden = true;
  $("account").hidden = true;
  $("sign-in-view").hidden = false;
  $("password").value = "";
  $("email").focus();
}

function showWork() {
  $("sign-in-view").hidden = true;
  $("sign-in-error").hidden = true;
  $("whoami").textContent = `Signed in as ${session.email}`;
  $("account").hidden = false;
  $("work-view").hidden = false;
  jobs.start(capabilities);
}

async function signIn(event) {
  event.preventDefault();
  const button = event.submitter || $("sign-in-form").querySelector("button");
  const error = $("sign-in-error");
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    error.textContent = "Enter your email and password.";
    error.hidden = false;
    return;
  }
  button.disabled = true;
  error.hidden = true;
  notify("");
  try {
    await session.signIn(email, password);
  } catch (failure) {
    error.textContent = describeError(failure, { action: "sign-in" });
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// --- confirming an email address ---------------------------------------------------------

/**
 * A confirmation link opens the page with #confirm-email=<token>: keep the token in this tab
 * (and out of the address bar and history) until the account is signed in, then send it.
 */
function takeConfirmation() {
  const match = /^#confirm-email=([\w.-]{1,1000})$/.exec(window.location.hash);
  if (!match) return false;
  sessionStorage.setItem(CONFIRM_KEY, match[1]);
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return true;
}

async function confirmEmail() {
  const token = sessionStorage.getItem(CONFIRM_KEY);
  if (!token || !session.signedIn) return;
  sessionStorage.removeItem(CONFIRM_KEY);
  try {
    const user = await session.json("POST", "/users/confirm-email", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    notify(`Your email address is now ${user.email}.`);
  } catch (failure) {
    const messages = {
      404: "This confirmation link is not for the account you are signed in to, or a newer "
        + "link replaced it.",
      409: "Another account uses that email address now.",
      410: "This confirmation link has expired: change your email again to get a new one.",
    };
    notify(messages[failure.status] || describeError(failure), "error");
  }
}

// --- uploads -----------------------------------------------------------------------------

function addFiles(files) {
  const fields = readOptions($("upload-form"), options);
  for (const file of files) {
    waiting.push({ file, fields, row: uploadRow(file) });
  }
  pump();
}

function pump() {
  while (uploading < UPLOADS_AT_ONCE && waiting.length) {
    const item = waiting.shift();
    uploading += 1;
    upload(item).finally(() => {
      uploading -= 1;
      pump();
    });
  }
}

async function upload({ file, fields, row }) {
  const transport = pickTransport(file, capabilities);
  row.status.textContent = "Uploading 0%";
  try {
    await transport.upload(session, file, fields, (sent, total) => {
      const percent = total ? Math.floor((sent / total) * 100) : 0;
      row.progress.value = percent;
      row.status.textContent = percent >= 100 ? "Uploaded 100%, waiting for the server…"
        : `Uploading ${percent}%`;
    });
    row.element.dataset.state = "done";
    row.status.textContent = "Uploaded 100% — converting below";
    jobs.refreshNow();
  } catch (error) {
    row.element.dataset.state = "failed";
    row.progress.hidden = true;
    row.status.textContent = "Not uploaded";
    row.message.textContent = describeError(error, { what: `“${file.name}”`, action: "upload" });
    row.message.hidden = false;
  }
  row.dismiss.hidden = false;
}

function uploadRow(file) {
  const element = document.createElement("li");
  element.className = "row upload";
  element.dataset.state = "uploading";
  const head = document.createElement("div");
  head.className = "row-head";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = file.name;
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = "Waiting";
  head.append(name, status);
  const progress = document.createElement("progress");
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute("aria-label", `Upload of ${file.name}`);
  const message = document.createElement("p");
  message.className = "message error";
  message.setAttribute("role", "alert");
  message.hidden = true;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.hidden = true;
  dismiss.addEventListener("click", () => element.remove());
  element.append(head, progress, message, dismiss);
  $("uploads").append(element);
  return { element, status, progress, message, dismiss };
}

function wireDropZone() {
  const zone = $("drop-zone");
  const input = $("files");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = ""; // the same file can be chosen again
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
}

// --- from a link --------------------------------------------------------------------------

async function convertLink(event) {
  event.preventDefault();
  const input = $("video-url");
  const error = $("link-error");
  error.hidden = true;
  if (!input.checkValidity()) {
    error.textContent = "Enter the video's address, starting with http:// or https://.";
    error.hidden = false;
    return;
  }
  const fields = Object.fromEntries(readOptions($("upload-form"), options));
  const button = event.submitter || $("link-form").querySelector("button");
  button.disabled = true;
  try {
    await session.json("POST", "/jobs", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ url: input.value, ...fields }),
    });
    input.value = "";
    notify("The server is fetching the video: watch it below.");
    jobs.refreshNow();
  } catch (failure) {
    error.textContent = describeError(failure, { what: "The link", action: "import" });
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------

async function main() {
  wireDropZone();
  $("sign-in-form").addEventListener("submit", signIn);
  $("link-form").addEventListener("submit", convertLink);
  $("sign-out").addEventListener("click", () => session.signOut());
  $("refresh").addEventListener("click", () => jobs.refreshNow());
  session.addEventListener("signedin", () => {
    showWork();
    confirmEmail();
  });
  session.addEventListener("signedout", (event) => {
    showSignIn();
    notify(event.detail === "expired"
      ? "You have been signed out because your session expired. Please sign in again."
      : "You are signed out.", event.detail === "expired" ? "error" : "info");
  });
  const confirming = takeConfirmation();
  const spec = await describedApi();
  capabilities = capabilitiesOf(spec);
  options = uploadOptions(spec);
  renderOptions($("options"), options);
  if (session.signedIn) {
    showWork();
    confirmEmail();
  } else {
    showSignIn();
    if (confirming) notify("Sign in to the account to confirm your email address.");
  }
}

main();
