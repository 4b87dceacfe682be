// @ts-check
/* UI strings: the table of the page's language, sent by the server in the page config
   (dashboard/i18n, big_screen/i18n, templates/m/strings.*.json). A missing key shows as
   the key itself, so a gap is visible on screen instead of breaking a page. */
import { config } from "./config.js";

/** @type {Record<string, string>} */
const table = config.strings || {};

/** The page's language ("zh-CN" or "en"). */
export const lang = String(config.lang || document.documentElement.lang || "zh-CN");

/** @param {string} key */
export function has(key) {
  return Object.prototype.hasOwnProperty.call(table, key);
}

/**
 * The string for *key* with {name} placeholders filled from *vars*.
 * @param {string} key
 * @param {Record<string, unknown>} [vars]
 */
export function t(key, vars) {
  const text = has(key) ? table[key] : key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    const v = vars[name];
    return v === undefined || v === null ? whole : String(v);
  });
}

/**
 * A string that may be missing (an open vocabulary): its text, or *fallback* — never the key.
 * @param {string} key
 * @param {string} fallback
 */
export function tOr(key, fallback) {
  return has(key) ? table[key] : fallback;
}
