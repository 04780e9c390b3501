// The page an upload link opens (/guest/<token>): drop one file, watch it convert, download it
// when the link's owner allowed it. No account: the token in the URL is the only credential.
const $ = (id) => document.getElementById(id);
const base = window.location.pathname.replace(/\/+$/, "");
const POLL_MS = 1000;

function notify(message, kind = "info") {
  const notice = $("notice");
  notice.textContent = message;
  notice.hidden = !message;
  notice.classList.toggle("error", kind === "error");
}

async function messageOf(response) {
  try {
    const body = await response.json();
    return body.message || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function sizeText(mb) {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${mb} MiB`;
}

async function start() {
  const response = await fetch(`${base}/link`, { credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    notify(await messageOf(response), "error");
    return;
  }
  const link = await response.json();
  if (link.state !== "open") {
    notify(
      link.state === "used"
        ? "This link was used already: it takes one file."
        : "This link has expired.",
      "error",
    );
    return;
  }
  const until = new Date(link.expires_at).toLocaleString();
  $("guest-terms").textContent =
    `One video or audio file, up to ${sizeText(link.max_mb)}, until ${until}.` +
    (link.allow_download ? " You can download the MP3 when it is ready." : "");
  $("guest-view").hidden = false;
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const [file] = event.dataTransfer.files;
    if (file) send(file);
  });
  $("file").addEventListener("change", () => {
    const [file] = $("file").files;
    if (file) send(file);
  });
}

function show(status, percent) {
  $("guest-status").textContent = status;
  $("guest-row").dataset.status = status;
  $("guest-progress").value = percent;
}

function send(file) {
  notify("");
  $("guest-view").hidden = true;
  $("progress-view").hidden = false;
  $("guest-file").textContent = file.name;
  show("uploading", 0);
  const form = new FormData();
  form.append("file", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", `${base}/upload`);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) show("uploading", (100 * event.loaded) / event.total);
  });
  request.addEventListener("load", () => {
    let body = {};
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = {};
    }
    if (request.status !== 202) {
      failed(body.message || `HTTP ${request.status}`);
      return;
    }
    show("queued", 0);
    follow();
  });
  request.addEventListener("error", () => failed("the connection broke; reload and try again"));
  request.send(form);
}

function failed(message) {
  $("progress-view").hidden = true;
  notify(message, "error");
  start();
}

async function follow() {
  const response = await fetch(`${base}/job`, { credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    notify(await messageOf(response), "error");
    return;
  }
  const job = await response.json();
  show(job.status, job.progress || 0);
  if (job.status === "failed") {
    notify(job.error || "the conversion failed", "error");
    return;
  }
  if (job.status === "done") {
    show("done", 100);
    if (job.download_url) {
      const link = $("guest-download");
      link.href = job.download_url;
      link.hidden = false;
    } else {
      notify("Done: the MP3 went to the person who sent you this link.");
    }
    return;
  }
  if (["queued", "converting"].includes(job.status)) setTimeout(follow, POLL_MS);
}

start().catch(() => notify("The page could not reach the server; reload to try again.", "error"));
