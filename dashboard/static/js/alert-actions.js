// @ts-check
/* Acknowledge / resolve an alert (POST /api/v1/alerts/{id}/ack|resolve {note}), and an
   alert's facts in words — shared by the dashboard's side list and the alerts centre, so
   both behave the same. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { el } from "./lib/dom.js";
import { number } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { toast } from "./lib/ui.js";

// Who may act (server/api/alerts.py): acknowledging includes the company concerned;
// resolving — closing a finding — is the supervisor's decision only.
const ROLE = config.user && config.user.role;
const CAN_ACK = ["admin", "regulator", "officer", "company_admin"].includes(ROLE);
const CAN_RESOLVE = ["admin", "regulator", "officer"].includes(ROLE);

/**
 * POST the transition; resolves with the updated alert row.
 * @param {number} id
 * @param {"ack" | "resolve"} action
 * @param {string} note
 */
export async function transition(id, action, note) {
  const res = await api("/api/v1/alerts/" + encodeURIComponent(id) + "/" + action, { method: "POST", body: note ? { note } : {} });
  return res && res.alert ? res.alert : res;
}

/**
 * The action row of one alert (note, acknowledge, resolve), or null if none applies.
 * @param {any} alert
 * @param {(updated: any) => void} onChanged
 */
export function actions(alert, onChanged) {
  const showAck = CAN_ACK && alert.state === "open";
  const showResolve = CAN_RESOLVE && alert.state !== "resolved";
  if (!showAck && !showResolve) return null;
  const input = el("input", { name: "note", maxlength: "2000", placeholder: t("alert.note_placeholder"), "aria-label": t("alert.note") });
  /**
   * @param {"ack" | "resolve"} action
   * @param {HTMLButtonElement} btn
   */
  const run = async (action, btn) => {
    btn.disabled = true;
    try {
      const updated = await transition(alert.id, action, input.value.trim());
      toast(t(action === "ack" ? "alert.acked" : "alert.resolved"));
      const state = (updated && updated.state) || (action === "ack" ? "acknowledged" : "resolved");
      onChanged({ ...alert, ...(updated || {}), state });
    } catch (err) {
      btn.disabled = false;
      toast(t("alert.action_failed") + " " + /** @type {Error} */ (err).message, "error");
    }
  };
  const ack = showAck ? el("button", { class: "btn btn-sm", type: "button", dataset: { action: "ack" } }, t("alert.ack")) : null;
  const resolve = showResolve ? el("button", { class: "btn btn-sm btn-primary", type: "button", dataset: { action: "resolve" } }, t("alert.resolve")) : null;
  if (ack) ack.addEventListener("click", () => run("ack", ack));
  if (resolve) resolve.addEventListener("click", () => run("resolve", resolve));
  return el("div", { class: "alert-actions" }, input, ack, resolve);
}

/**
 * "金水区 · 站点 STA-A1 · 公司" — where an alert is.
 * @param {any} alert
 * @param {{districts?: Record<string, string>, sites?: Record<string, string>, companies?: Record<string, string>}} lookups
 */
export function subject(alert, lookups) {
  const parts = [];
  if (alert.district && lookups.districts && lookups.districts[alert.district]) parts.push(lookups.districts[alert.district]);
  const site = alert.site_name || (alert.site_id && lookups.sites && lookups.sites[alert.site_id]);
  const company = alert.company_name || (alert.company_id && lookups.companies && lookups.companies[alert.company_id]);
  if (site) parts.push(site);
  if (company) parts.push(company);
  return parts.join(" · ");
}

/**
 * The facts of an alert's details in words: weights, refusal reasons, gas level, stock.
 * @param {any} alert
 */
export function details(alert) {
  const d = alert.details || {};
  const bits = [];
  if (d.net_kg !== undefined) bits.push(t("alert.detail.net_kg", { v: number(d.net_kg) }));
  if (d.max_fill_kg !== undefined) bits.push(t("alert.detail.max_kg", { v: number(d.max_fill_kg) }));
  if (d.reasons) bits.push([].concat(d.reasons).map((r) => tOr("reason." + r, r)).join("、"));
  if (d.leak_ppm !== undefined) bits.push(t("alert.detail.leak_ppm", { v: number(d.leak_ppm, 0) }));
  if (d.full !== undefined && d.permitted !== undefined) bits.push(t("alert.detail.stock", { full: d.full, permitted: d.permitted }));
  return bits.join(" · ");
}

/**
 * District names in the page's language, by code (from the page config's filter options).
 * @returns {Record<string, string>}
 */
export function districtNames() {
  /** @type {Record<string, string>} */
  const out = {};
  for (const d of config.districts || []) out[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;
  return out;
}
