// @ts-check
/* Calls to the platform's JSON API (docs/API.md): the session cookie plus the CSRF header
   on writes (double-submit, the cookie named in the page config), or a bearer token (the
   wall's kiosk session); JSON both ways; the platform's one error shape
   {"error": {"code", "message", "details"}} becomes an ApiError. A network failure is an
   ApiError too (status 0, code "network_error"), so callers handle one type. */
import { config } from "./config.js";

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} code the platform's error code
   * @param {string} message
   * @param {unknown} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * A query string from an object, dropping empty values ("" when nothing is left).
 * @param {Record<string, unknown> | undefined} query
 */
export function qs(query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    params.append(k, String(v));
  }
  const text = params.toString();
  return text ? "?" + text : "";
}

/** @param {string} name */
export function cookie(name) {
  for (const part of document.cookie ? document.cookie.split("; ") : []) {
    const eq = part.indexOf("=");
    if (part.slice(0, eq) === name) return decodeURIComponent(part.slice(eq + 1));
  }
  return null;
}

/** The CSRF token of the session (null: no session cookie was set). */
export function csrfToken() {
  return cookie(config.csrf_cookie || "cylwatch_csrf");
}

/**
 * @typedef {object} ApiOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {Record<string, unknown>} [query]
 * @property {string | null} [bearer] a session token instead of the cookie
 * @property {boolean} [noRedirect] do not send a logged-in page to /login on 401
 * @property {boolean} [anonymous] send no cookie (the wall trading its kiosk token)
 */

/**
 * @param {string} path
 * @param {ApiOptions} [opts]
 * @returns {Promise<any>}
 */
export async function api(path, opts = {}) {
  const method = (opts.method || "GET").toUpperCase();
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  /** @type {string | undefined} */
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  if (opts.bearer) {
    headers.Authorization = "Bearer " + opts.bearer;
  } else if (!opts.anonymous && method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let res;
  try {
    res = await fetch(path + qs(opts.query), {
      method,
      headers,
      body,
      cache: "no-store",
      credentials: opts.bearer || opts.anonymous ? "omit" : "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", err instanceof Error ? err.message : String(err));
  }
  if (res.status === 401 && config.user && !opts.noRedirect) {
    window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }
  const json = (res.headers.get("Content-Type") || "").includes("application/json");
  const data = json ? await res.json() : { text: await res.text() };
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.statusText, err.details);
  }
  return data;
}
