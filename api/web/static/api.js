// The session with the vid2mp3 API: the token, authenticated requests, errors in plain words.

const TOKEN_KEY = "vid2mp3.token";
const EMAIL_KEY = "vid2mp3.email";
const EXPIRES_KEY = "vid2mp3.expires";

/** An HTTP failure from the API in its JSON error shape (status 0: the server was not reached). */
export class ApiError extends Error {
  constructor(status, message, { code = null, retryAfter = null, fields = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, or null
    this.fields = fields;
  }

  /** Build from a status, the Retry-After header and the response text. */
  static from(status, retryAfterHeader, text) {
    let body = null;
    try { body = JSON.parse(text); } catch { body = null; }
    const message = (body && body.message) || (status ? `HTTP ${status}` : "network error");
    const fields = body && body.errors ? body.errors : null;
    return new ApiError(status, message, {
      code: body && body.code, retryAfter: parseRetryAfter(retryAfterHeader), fields,
    });
  }
}

/** Retry-After is seconds or an HTTP date; returns seconds from now, or null. */
export function parseRetryAfter(value, now = Date.now()) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

function inWords(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return minutes < 90 ? `${minutes} minutes` : `${Math.ceil(minutes / 60)} hours`;
}

function clock(seconds, now = Date.now()) {
  return new Date(now + seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * What went wrong, for a person. `what` names the thing acted on ("“clip.mp4”"), `action`
 * is "upload", "sign-in" or anything else.
 */
export function describeError(error, { what = "", action = "" } = {}) {
  const detail = error.message ? ` (${error.message})` : "";
  const subject = what || "This file";
  switch (error.status) {
    case 0:
      return action === "upload"
        ? `The upload of ${subject} was cut off: the network failed, or the server closed the `
          + "connection (a file far larger than it accepts is refused that way)."
        : "Could not reach the server. Check your connection and try again.";
    case 401:
      return action === "sign-in"
        ? "Wrong email or password."
        : "You have been signed out because your session expired. Please sign in again.";
    case 403:
      return "You are not allowed to do that.";
    case 404:
      return `${what ? what + " was" : "It was"} not found; it may have been deleted.`;
    case 413:
      return `${subject} is too large${detail}.`;
    case 415:
      return `${subject} is not a video we accept${error.message ? `: ${error.message}` : ""}.`;
    case 422: {
      const fields = error.fields && error.fields.form ? error.fields.form : error.fields;
      const named = fields ? ` ${Object.keys(fields).join(", ")}` : "";
      return `An option was not accepted:${named}${detail}.`;
    }
    case 429: {
      const wait = error.retryAfter;
      const when = wait === null ? "in a little while" : `in ${inWords(wait)} (at ${clock(wait)})`;
      const which = action === "sign-in" ? "Too many sign-in attempts" : "Too many requests";
      return `${which}. Please try again ${when}.`;
    }
    case 503: {
      const wait = error.retryAfter;
      return `The service is busy or partly down. Please try again${wait === null ? " shortly" : ` in ${inWords(wait)}`}.`;
    }
    default:
      return `Something went wrong${detail}.`;
  }
}

/**
 * The signed-in user. The token lives in this object and in sessionStorage (gone when the tab
 * closes): never in localStorage, never in a URL. Emits "signedin" and "signedout" (detail:
 * the reason, e.g. "expired").
 */
export class Session extends EventTarget {
  constructor(storage = window.sessionStorage) {
    super();
    this.storage = storage;
    this.token = storage.getItem(TOKEN_KEY);
    this.email = storage.getItem(EMAIL_KEY) || "";
    this.expiresAt = Number(storage.getItem(EXPIRES_KEY)) || 0;
    this.timer = null;
    if (this.token && this.expiresAt && this.expiresAt <= Date.now()) this.forget();
    if (this.token) this.scheduleExpiry();
  }

  get signedIn() { return Boolean(this.token); }

  async signIn(email, password) {
    const raw = new TextEncoder().encode(`${email}:${password}`);
    const basic = btoa(String.fromCharCode(...raw));
    // credentials "omit": a 401 with a Basic challenge must not open the browser's own dialog.
    const response = await send("POST", "/login", { Authorization: `Basic ${basic}` });
    if (response.status !== 200) throw await errorOf(response);
    const body = await response.json();
    this.token = body.access_token;
    this.email = email;
    this.expiresAt = Date.now() + body.expires_in * 1000;
    this.storage.setItem(TOKEN_KEY, this.token);
    this.storage.setItem(EMAIL_KEY, email);
    this.storage.setItem(EXPIRES_KEY, String(this.expiresAt));
    this.scheduleExpiry();
    this.dispatchEvent(new CustomEvent("signedin"));
  }

  signOut(reason = "signed-out") {
    const was = this.signedIn;
    this.forget();
    if (was) this.dispatchEvent(new CustomEvent("signedout", { detail: reason }));
  }

  forget() {
    clearTimeout(this.timer);
    this.token = null;
    this.expiresAt = 0;
    for (const key of [TOKEN_KEY, EMAIL_KEY, EXPIRES_KEY]) this.storage.removeItem(key);
  }

  scheduleExpiry() {
    clearTimeout(this.timer);
    if (!this.expiresAt) return;
    const left = Math.min(this.expiresAt - Date.now(), 2 ** 31 - 1);
    this.timer = setTimeout(() => this.signOut("expired"), Math.max(0, left));
  }

  authorization() {
    return { Authorization: `Bearer ${this.token}` };
  }

  /** A request with the token; a 401 signs out (the token expired or was revoked). */
  async fetch(method, path, { headers = {}, body = null, okStatuses = null, redirect = "error" } = {}) {
    if (!this.signedIn) throw new ApiError(401, "not signed in");
    const response = await send(method, path, { ...this.authorization(), ...headers }, body, redirect);
    if (response.type === "opaqueredirect") return response; // asked for with redirect: "manual"
    if (response.status === 401) {
      this.signOut("expired");
      throw await errorOf(response);
    }
    const ok = okStatuses ? okStatuses.includes(response.status) : response.ok;
    if (!ok) throw await errorOf(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.fetch(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  /** Note a 401 seen outside fetch() (an XMLHttpRequest upload). */
  rejected(status) {
    if (status === 401) this.signOut("expired");
  }
}

async function send(method, path, headers, body = null, redirect = "error") {
  try {
    return await fetch(path, {
      method, headers, body, credentials: "omit", cache: "no-store", redirect,
    });
  } catch (error) {
    throw new ApiError(0, "");
  }
}

async function errorOf(response) {
  return ApiError.from(response.status, response.headers.get("Retry-After"), await response.text());
}
