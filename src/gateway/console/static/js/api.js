// The signed /v1 client: Megam's HMAC scheme (docs/original.md §2.1) done in the browser.
import { HASHES, hmac } from "./hmac.js";
import { base64, hex, md5 } from "./md5.js";

const encoder = new TextEncoder();
const SESSION_KEY = "megam.session";
const WEBCRYPTO_HASHES = { sha1: "SHA-1", sha256: "SHA-256" };

// sessionStorage only: the api key is gone when the tab closes, and never reaches a cookie.
export function currentSession() {
  const raw = sessionStorage.getItem(SESSION_KEY);
  return raw ? JSON.parse(raw) : null;
}

export function saveSession(email, apiKey, algorithm = "sha1") {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ email, apiKey, algorithm }));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** "YYYY-MM-DD HH:MM" in UTC, the format of X-Megam-DATE. */
export function megamDate(now = new Date()) {
  return now.toISOString().slice(0, 16).replace("T", " ");
}

export function stringToSign(date, path, bodyBytes) {
  return `${date}\n${path}\n${base64(md5(bodyBytes))}`;
}

export async function hmacHex(apiKey, text, algorithm = "sha1") {
  if (!Object.hasOwn(HASHES, algorithm)) {
    throw new ApiError(0, `This console cannot sign with ${algorithm}`,
      "Sign in again and choose HMAC-SHA1 or HMAC-SHA256.");
  }
  // WebCrypto exists only in secure contexts (HTTPS or localhost). Reached over plain http on a
  // LAN address, the console signs with the pure-JS HMAC instead: the same bytes, only slower.
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return hex(hmac(HASHES[algorithm], encoder.encode(apiKey), encoder.encode(text)));
  const key = await subtle.importKey(
    "raw", encoder.encode(apiKey), { name: "HMAC", hash: WEBCRYPTO_HASHES[algorithm] }, false, ["sign"]);
  return hex(new Uint8Array(await subtle.sign("HMAC", key, encoder.encode(text))));
}

/** The headers that sign a request for `target`: the path (with /v1) and, when the request has
 * one, `?` and its query exactly as it is sent, so a signature serves no other query. */
export async function signedHeaders(session, target, bodyBytes = new Uint8Array()) {
  const date = megamDate();
  const text = stringToSign(date, target, bodyBytes);
  const headers = {
    "X-Megam-HMAC": `${session.email}:${await hmacHex(session.apiKey, text, session.algorithm)}`,
    "X-Megam-DATE": date,
  };
  if (session.algorithm && session.algorithm !== "sha1") {
    headers["X-Megam-HMAC-ALG"] = session.algorithm;
  }
  return headers;
}

export class ApiError extends Error {
  constructor(status, message, more = "") {
    super(message);
    this.status = status;
    this.more = more;
  }
}

/** An error answer as words for the user: the gateway's Megam::Error msg, or the HTTP status. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy or a crash page; the status is all there is
  }
  if (body && body.msg) return new ApiError(response.status, body.msg, body.more || "");
  return new ApiError(response.status, `The gateway answered ${response.status} ${response.statusText}`);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Call the API; `body` (an object) is sent as JSON. Signed unless `open` is set. */
export async function call(method, path, { body, params, session = currentSession(), open = false, signal } = {}) {
  const bytes = body === undefined ? new Uint8Array() : encoder.encode(JSON.stringify(body));
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const target = path + query(params || {});
  if (!open) {
    if (!session) throw new ApiError(401, "You are not signed in");
    Object.assign(headers, await signedHeaders(session, target, bytes));
  }
  let response;
  try {
    response = await fetch(target, {
      method, headers, body: body === undefined ? undefined : bytes, cache: "no-store", signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The gateway cannot be reached", "Check your network connection, then try again.");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path, params) => call("GET", path, { params });
export const post = (path, body) => call("POST", path, { body });

/** What this gateway offers, from its OpenAPI document (fetched once). */
let routes = null;
export async function offeredRoutes() {
  if (!routes) {
    const doc = await call("GET", "/v1/openapi.json", { open: true });
    routes = Object.entries(doc.paths || {}).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
  }
  return routes;
}

export async function offers(method, pathPattern) {
  return (await offeredRoutes()).some((route) => route === `${method} ${pathPattern}`);
}
