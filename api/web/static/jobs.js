// The job list: polls GET /jobs (If-None-Match when the server sends an ETag), follows each
// active job live by its events (an EventSource opened with a one-job ticket, so the token
// never goes in a URL), says each job's status in words with its progress, and offers the
// actions that status allows: Download and Copy link once done, Cancel while fetching, queued
// or converting, Delete always. A stream refused or broken: that job is followed by the list's
// polling again.
import { describeError } from "./api.js";

const ACTIVE = new Set(["fetching", "queued", "converting"]);
const FAST_MS = 1000; // while something converts
const SLOW_MS = 5000; // otherwise, or while the tab is hidden, or when events carry it all
const STREAM_RETRY_MS = 30_000; // after a refused or broken stream, poll that long first

export class JobList {
  constructor({ session, list, empty, linksNote, notify }) {
    Object.assign(this, { session, list, empty, linksNote, notify });
    this.rows = new Map();
    this.etag = null;
    this.timer = null;
    this.running = false;
    this.capabilities = {};
    this.linksUnavailable = false;
    this.reachable = true;
  }

  start(capabilities) {
    this.capabilities = capabilities;
    this.linksUnavailable = capabilities.links === false;
    this.running = true;
    this.tick();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    for (const row of this.rows.values()) this.unfollow(row);
    this.rows.clear();
    this.list.replaceChildren();
    this.etag = null;
    this.empty.hidden = false;
  }

  /** Poll now (after an upload or an action) instead of at the next tick. */
  refreshNow() {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.tick();
  }

  async tick() {
    try {
      await this.refresh();
      if (!this.reachable) this.notify("Connected to the server again.");
      this.reachable = true;
    } catch (error) {
      if (!this.running) return;
      if (error.status !== 401 && this.reachable) this.notify(describeError(error), "error");
      this.reachable = false;
    }
    if (!this.running) return;
    // Rows followed by their events need no fast polling; the slow one still finds new jobs.
    const active = [...this.rows.values()].some(
      (row) => ACTIVE.has(row.job.status) && !row.source);
    const delay = active && !document.hidden ? FAST_MS : SLOW_MS;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delay);
  }

  async refresh() {
    const headers = this.etag ? { "If-None-Match": this.etag } : {};
    const response = await this.session.fetch("GET", "/jobs?per_page=50",
      { headers, okStatuses: [200, 304] });
    if (!this.running || response.status === 304) return;
    this.etag = response.headers.get("ETag");
    this.render((await response.json()).items);
  }

  render(jobs) {
    const seen = new Set();
    let previous = null;
    for (const job of jobs) {
      seen.add(job.id);
      let row = this.rows.get(job.id);
      if (!row) {
        row = this.createRow(job);
        this.rows.set(job.id, row);
      }
      if (!row.source) row.job = job; // a live stream knows better than this list
      this.updateRow(row);
      this.follow(row);
      // Keep newest first without moving rows that are already in place (focus stays put).
      const wanted = previous ? previous.nextSibling : this.list.firstChild;
      if (wanted !== row.element) this.list.insertBefore(row.element, wanted);
      previous = row.element;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        this.unfollow(row);
        row.element.remove();
        this.rows.delete(id);
      }
    }
    this.empty.hidden = this.rows.size > 0;
    this.linksNote.hidden = !this.linksUnavailable || this.rows.size === 0;
    this.linksNote.textContent = "Copy link is not available: this server does not offer "
      + "shareable links yet.";
  }

  /** Follow a queued or converting job by its events, unless a stream failed lately. */
  async follow(row) {
    if (!this.capabilities.events || row.source || !ACTIVE.has(row.job.status)) return;
    if (row.streamFailedAt && Date.now() - row.streamFailedAt < STREAM_RETRY_MS) return;
    row.source = "opening";
    let ticket;
    try {
      ticket = await this.session.json("POST", `/jobs/${row.job.id}/events/ticket`);
    } catch {
      row.source = null;
      row.streamFailedAt = Date.now();
      return;
    }
    if (row.source !== "opening" || !this.running) return;
    const source = new EventSource(ticket.url);
    row.source = source;
    row.element.dataset.live = "events";
    const onJob = (event) => {
      let job;
      try { job = JSON.parse(event.data); } catch { return; }
      row.job = job;
      this.updateRow(row);
      if (!ACTIVE.has(job.status)) {
        this.unfollow(row);
        this.refreshNow();
      }
    };
    source.addEventListener("status", onJob);
    source.addEventListener("progress", onJob);
    // Refused (503 busy, an expired ticket) or cut: back to polling for this job; the next
    // reconnect needs a new ticket anyway.
    source.onerror = () => {
      if (row.source !== source) return;
      this.unfollow(row);
      row.streamFailedAt = Date.now();
      this.refreshNow();
    };
  }

  unfollow(row) {
    if (row.source && row.source.close) row.source.close();
    row.source = null;
    delete row.element.dataset.live;
  }

  createRow(job) {
    const element = document.createElement("li");
    element.className = "row job";
    element.dataset.jobId = job.id;
    const head = document.createElement("div");
    head.className = "row-head";
    const name = document.createElement("span");
    name.className = "name";
    name.id = `job-${job.id}-name`;
    name.textContent = job.filename || job.id;
    const status = document.createElement("span");
    status.className = "status";
    head.append(name, status);
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.setAttribute("aria-label", `Conversion of ${job.filename || job.id}`);
    const message = document.createElement("p");
    message.className = "message";
    message.setAttribute("role", "status");
    message.hidden = true;
    const actions = document.createElement("div");
    actions.className = "actions";
    const row = { element, name, status, progress, message, job, buttons: {} };
    for (const [key, label, handler] of [
      ["download", "Download", () => this.download(row)],
      ["link", "Copy link", () => this.copyLink(row)],
      ["cancel", "Cancel", () => this.cancel(row)],
      ["delete", "Delete", () => this.remove(row)],
    ]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.className = `action-${key}`;
      button.setAttribute("aria-describedby", name.id);
      button.addEventListener("click", () => this.act(row, button, handler));
      row.buttons[key] = button;
      actions.append(button);
    }
    element.append(head, progress, message, actions);
    return row;
  }

  updateRow(row) {
    const { job } = row;
    const percent = Math.max(0, Math.min(100, Math.floor(job.progress || 0)));
    row.element.dataset.status = job.status;
    row.status.textContent = statusWords(job, percent);
    // A bar only while the job waits (indeterminate) or converts, and full once it is done;
    // a failed, cancelled or expired job has none.
    if (job.status === "queued" || (job.status === "fetching" && !job.fetch_total)) {
      row.progress.removeAttribute("value");
    } else if (job.status === "fetching") row.progress.value = percent;
    else if (job.status === "converting") row.progress.value = percent;
    else if (job.status === "done") row.progress.value = 100;
    row.progress.hidden = !ACTIVE.has(job.status) && job.status !== "done";
    const done = job.status === "done";
    row.buttons.download.hidden = !done;
    row.buttons.link.hidden = !done;
    row.buttons.link.disabled = this.linksUnavailable;
    row.buttons.cancel.hidden = !ACTIVE.has(job.status);
  }

  async act(row, button, handler) {
    button.disabled = true;
    this.say(row, "");
    try {
      await handler();
    } catch (error) {
      if (error.status !== 401) this.say(row, describeError(error, { what: `“${row.job.filename}”` }), true);
    } finally {
      button.disabled = button === row.buttons.link && this.linksUnavailable;
    }
  }

  say(row, text, isError = false) {
    row.message.textContent = text;
    row.message.hidden = !text;
    row.message.classList.toggle("error", isError);
  }

  async download(row) {
    this.say(row, "Downloading…");
    // The token goes in a header, never in a URL: fetch into a Blob, then save that.
    const links = row.job.links || {};
    const response = await this.session.fetch(
      "GET", links.audio || links.mp3 || `/jobs/${row.job.id}/mp3`, { redirect: "manual" });
    if (response.type === "opaqueredirect") {
      // S3_PRESIGNED_DOWNLOADS: the output is fetched from the bucket. A one-minute link of
      // this job leads the browser there (its redirect carries no token); the bucket's answer
      // names the file and asks to save it.
      const link = await this.session.json("POST", `/jobs/${row.job.id}/links`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ expires_in: 60 }),
      });
      const anchor = document.createElement("a");
      anchor.href = new URL(link.url, window.location.origin).href;
      anchor.hidden = true;
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      this.say(row, "Downloading from storage…");
      return;
    }
    const blob = await response.blob();
    const name = attachmentName(response.headers.get("Content-Disposition"))
      || audioName(row.job.filename, row.job.format);
    const url = URL.createObjectURL(blob);
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = name;
    anchor.hidden = true;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    this.say(row, `Saved ${name}.`);
  }

  async copyLink(row) {
    let body;
    try {
      body = await this.session.json("POST", `/jobs/${row.job.id}/links`);
    } catch (error) {
      if ((error.status === 404 || error.status === 405) && !this.capabilities.links) {
        this.linksUnavailable = true;
        this.render([...this.rows.values()].map((r) => r.job));
        this.say(row, "This server does not offer shareable links yet.");
        return;
      }
      throw error;
    }
    const href = body.url || body.link || body.href;
    const url = new URL(href, window.location.origin).href;
    const until = body.expires_at ? ` It works until ${new Date(body.expires_at).toLocaleString()}.` : "";
    try {
      await navigator.clipboard.writeText(url);
      this.say(row, `Link copied.${until}`);
    } catch {
      this.say(row, `Copy this link: ${url}${until}`);
    }
  }

  async cancel(row) {
    const path = `/jobs/${row.job.id}`;
    if (this.capabilities.cancel !== false) {
      try {
        await this.session.fetch("POST", `${path}/cancel`);
        this.refreshNow();
        return;
      } catch (error) {
        if (error.status !== 404 && error.status !== 405) throw error;
      }
    }
    // No cancel endpoint on this server: deleting the job stops and removes it.
    await this.session.fetch("DELETE", path);
    this.notify(`Cancelled “${row.job.filename}”.`);
    this.refreshNow();
  }

  async remove(row) {
    await this.session.fetch("DELETE", `/jobs/${row.job.id}`);
    this.notify(`Deleted “${row.job.filename}”.`);
    this.refreshNow();
  }
}

/** What a job's row says about it, one wording per status of the API. */
export function statusWords(job, percent = 0) {
  switch (job.status) {
    case "fetching": {
      const got = job.fetched_bytes ? size(job.fetched_bytes) : null;
      const of = job.fetch_total ? ` of ${size(job.fetch_total)}` : "";
      return `Fetching from the link${got ? ` · ${got}${of}` : ""}`;
    }
    case "queued":
      return "Queued";
    case "converting":
      return `Converting ${percent}%`;
    case "done": {
      const facts = [job.format && job.format !== "mp3" ? job.format.toUpperCase() : null,
        job.duration_s != null ? duration(job.duration_s) : null,
        job.mp3_size != null ? size(job.mp3_size) : null,
        job.mode === "copy" ? "audio copied" : job.bitrate, ...(job.notes || [])].filter(Boolean);
      return `Done${facts.length ? " · " + facts.join(" · ") : ""}`;
    }
    case "failed":
      return `Failed: ${job.error || "the conversion did not succeed"}`;
    case "cancelled":
      return "Cancelled";
    case "expired": {
      const until = job.expires_at ? new Date(job.expires_at).toLocaleString() : null;
      const what = job.format && job.format !== "mp3" ? `${job.format.toUpperCase()} file` : "MP3";
      return `Expired: the ${what} was deleted${until ? ` (kept until ${until})` : ""}`;
    }
    default: // a status this page does not know yet: say it as the API does
      return String(job.status);
  }
}

/** The name a job's output is saved as when the server gives none: the format is its extension. */
export function audioName(filename, format = "mp3") {
  return `${(filename || "audio").replace(/\.[^.]*$/, "")}.${format || "mp3"}`;
}

/** The file name of Content-Disposition: filename* (RFC 5987) first, then filename. */
export function attachmentName(header) {
  if (!header) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (extended) {
    try { return decodeURIComponent(extended[1]); } catch { /* fall through */ }
  }
  const plain = /filename\s*=\s*"([^"]*)"/i.exec(header);
  return plain ? plain[1] : null;
}

function duration(seconds) {
  const s = Math.round(seconds);
  return s < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}
