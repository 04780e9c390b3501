// How a file reaches the server. A transport is { name, upload(session, file, fields, onProgress) }
// resolving to the accepted job ({ job_id, status_url }) or rejecting with an ApiError.
// Small files go in one multipart POST /upload; large ones over tus 1.0.0 (/uploads/), in
// chunks, so a dropped connection costs one chunk, not the whole file. pickTransport() is the
// one place that chooses.
import { ApiError } from "./api.js";

const TUS_VERSION = "1.0.0";
const OFFSET_TYPE = "application/offset+octet-stream";
const MIB = 2 ** 20;
// Waits after a failed request before trying again (then the upload fails with the error).
// They add up to more than the server's 60 s lock on an upload, which a PATCH cut off by the
// network may hold until the server notices.
const RETRY_DELAYS_MS = [1000, 3000, 5000, 10000, 20000, 30000, 30000];

/** Where tus starts and how big each PATCH is. `window.VID2MP3_TUS` may change both (the
 * browser tests make a small clip take several chunks that way). */
function tusTuning() {
  const given = globalThis.VID2MP3_TUS || {};
  return {
    minBytes: Number(given.minBytes) || 16 * MIB,
    chunkBytes: Number(given.chunkBytes) || 8 * MIB,
  };
}

/**
 * One XMLHttpRequest (not fetch: only it reports upload progress). Resolves with the status,
 * a header getter and the text, whatever the status; rejects with ApiError 0 when the server
 * was not reached or the connection broke.
 */
function request(method, url, headers, body = null, onSent = null) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (onSent) {
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onSent(event.loaded, event.total);
      });
    }
    xhr.addEventListener("load", () => resolve({
      status: xhr.status,
      header: (name) => xhr.getResponseHeader(name),
      text: xhr.responseText,
    }));
    // The server may refuse early and close while we still send (too large): say so.
    xhr.addEventListener("error", () => reject(new ApiError(0, "")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "cancelled")));
    xhr.send(body);
  });
}

function failure(session, response) {
  session.rejected(response.status);
  return ApiError.from(response.status, response.header("Retry-After"), response.text);
}

export const multipart = {
  name: "multipart",
  async upload(session, file, fields, onProgress) {
    const body = new FormData();
    for (const [name, value] of fields) body.append(name, value); // options before the file
    body.append("file", file, file.name);
    const response = await request("POST", "/upload", session.authorization(), body,
      (sent, total) => onProgress(sent, total)); // the multipart body: a little over the file
    if (response.status !== 202) throw failure(session, response);
    onProgress(file.size, file.size);
    return JSON.parse(response.text);
  },
};

/** Base64 of a string's UTF-8 bytes, as Upload-Metadata wants its values. */
function base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A random key. crypto.randomUUID() exists only in secure contexts (https, localhost);
 * getRandomValues() everywhere. */
function randomKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Worth another try: the network, a conflict on the offset or the upload's lock (HEAD
 * resynchronises), or a server that is briefly unavailable (5xx from 502 up). */
function retryable(error) {
  return error.message !== "cancelled"
    && (error.status === 0 || error.status === 409 || error.status >= 502);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export const tus = {
  name: "tus",
  async upload(session, file, fields, onProgress) {
    const { chunkBytes } = tusTuning();
    const tusHeaders = (extra) => ({
      ...session.authorization(), "Tus-Resumable": TUS_VERSION, ...extra,
    });
    let failures = 0;
    async function again(error) {
      if (!retryable(error) || failures >= RETRY_DELAYS_MS.length) throw error;
      await sleep(RETRY_DELAYS_MS[failures]);
      failures += 1;
    }

    // The creation. Its Idempotency-Key makes a retry after a lost answer return the same
    // upload instead of starting a second one.
    const metadata = [["filename", file.name], ...fields]
      .map(([name, value]) => `${name} ${base64(String(value))}`).join(",");
    const creation = tusHeaders({
      "Upload-Length": String(file.size),
      "Upload-Metadata": metadata,
      "Idempotency-Key": randomKey(),
    });
    let created = null;
    while (!created) {
      try {
        const response = await request("POST", "/uploads/", creation);
        if (response.status !== 201) throw failure(session, response);
        created = response;
      } catch (error) {
        await again(error);
      }
    }
    const location = new URL(created.header("Location"), window.location.href).pathname;
    let offset = Number(created.header("Upload-Offset") || 0);
    let done = created.header("Vid2mp3-Job-Id") ? created : null;
    let resync = false;

    while (!done) {
      try {
        if (resync) { // after a failure: ask the server how much it kept
          const head = await request("HEAD", location, tusHeaders({}));
          if (head.status !== 200) throw failure(session, head);
          offset = Number(head.header("Upload-Offset"));
          if (head.header("Vid2mp3-Job-Id")) { done = head; break; }
          resync = false;
        }
        const start = offset;
        const end = Math.min(start + chunkBytes, file.size);
        const response = await request("PATCH", location,
          tusHeaders({ "Upload-Offset": String(start), "Content-Type": OFFSET_TYPE }),
          file.slice(start, end), (sent) => onProgress(start + sent, file.size));
        if (response.status !== 204) throw failure(session, response);
        offset = Number(response.header("Upload-Offset"));
        onProgress(offset, file.size);
        failures = 0;
        if (response.header("Vid2mp3-Job-Id")) done = response;
      } catch (error) {
        await again(error);
        resync = true;
      }
    }
    onProgress(file.size, file.size);
    return { job_id: done.header("Vid2mp3-Job-Id"), status_url: done.header("Vid2mp3-Job-Location") };
  },
};

/** The transport for a file: tus for large files when the server offers it, else multipart. */
export function pickTransport(file, capabilities = {}) {
  return capabilities.tus && file.size >= tusTuning().minBytes ? tus : multipart;
}
