// @ts-check
/* Dates and numbers as people read them, in the page's language. */
import { config } from "./config.js";
import { lang } from "./i18n.js";

/** @param {number} n */
function pad(n) {
  return n < 10 ? "0" + n : String(n);
}

/**
 * "2026-01-31 14:05" in the browser's zone (the city's, for the people using it).
 * @param {unknown} value an ISO instant or epoch milliseconds
 */
export function dateTime(value) {
  if (!value) return "—";
  const d = new Date(/** @type {string | number} */ (value));
  if (isNaN(d.getTime())) return String(value);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

/** "2026-01-31" of an ISO date or instant. @param {unknown} value */
export function date(value) {
  return value ? String(value).slice(0, 10) : "—";
}

/**
 * @param {unknown} n
 * @param {number} [digits] maximum fraction digits (2)
 */
export function number(n, digits = 2) {
  if (n === undefined || n === null || n === "") return "—";
  const x = Number(n);
  if (isNaN(x)) return String(n);
  return x.toLocaleString(lang === "en" ? "en-US" : "zh-CN", { maximumFractionDigits: digits });
}

/** A value or "—". @param {unknown} v */
export function text(v) {
  return v === undefined || v === null || v === "" ? "—" : String(v);
}

/**
 * An Intl date formatter in the city's time zone (page config "timezone", from
 * [alerts] timezone): the wall and the officer's phone show the city's clock.
 * @param {Intl.DateTimeFormatOptions} options
 */
export function cityFormat(options) {
  return new Intl.DateTimeFormat(lang, { timeZone: config.timezone, hour12: false, ...options });
}

/**
 * A date input's day (local) as the ISO instant it starts; endOfDay: the next day's start.
 * @param {string | undefined} value
 * @param {boolean} [endOfDay]
 */
export function dayInstant(value, endOfDay = false) {
  if (!value) return undefined;
  const d = new Date(value + "T00:00:00");
  if (isNaN(d.getTime())) return undefined;
  if (endOfDay) d.setDate(d.getDate() + 1);
  return d.toISOString();
}
