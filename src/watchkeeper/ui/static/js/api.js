// The one door to the HTTP API: adds the API key (or, signed in, the session's CSRF token on
// changes and the chosen project), turns 401 into a sign-in or key prompt and 404 into
// NotAvailable (an endpoint not deployed yet), and cancels stale page loads.

const KEY_STORAGE = "watchkeeper.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The endpoint does not exist (404 on a collection): pages render an empty state. */
export class NotAvailable extends ApiError {}

/** The API wants a key we do not have (or ours was refused). */
export class AuthRequired extends ApiError {}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

// A person signed in: the session's CSRF token (from GET /api/v1/session; the cookie itself
// is HttpOnly) and the project the pages show, for a person with roles in several.
const session = { csrf: "", project: "" };

export function setSession({ csrf = "", project = "" } = {}) {
  session.csrf = csrf;
  session.project = project;
}

const authListeners = new Set();

/** Register a callback run when any request answers 401. */
export function onAuthRequired(fn) {
  authListeners.add(fn);
}

function buildQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    if (typeof body.error === "string") return body.error;
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch {
    /* not JSON */
  }
  return `${res.status} ${res.statusText}`;
}

/** Call the API; returns parsed JSON (or null for 204). */
export async function request(method, path, { params, body, signal } = {}) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = "Bearer " + key;
  if (session.csrf && method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  if (session.project) headers["X-Watchkeeper-Project"] = session.project;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path + buildQuery(params), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.status === 401) {
    const msg = await errorMessage(res);
    authListeners.forEach((fn) => fn(msg));
    throw new AuthRequired(401, msg);
  }
  if (res.status === 404) throw new NotAvailable(404, await errorMessage(res));
  if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, params, signal) => request("GET", path, { params, signal });
export const post = (path, body, signal) => request("POST", path, { body, signal });
export const put = (path, body, signal) => request("PUT", path, { body, signal });
export const del = (path, signal) => request("DELETE", path, { signal });
