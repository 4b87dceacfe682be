// @ts-check
/* The previous period beside the current one on a report's page (/reports/{name}; docs/API.md
   "Reports": a report with a period answers `previous`, the totals of the period of the same
   length just before): each numeric total, its previous value and the change — in per cent,
   in points for a rate, "new" from nothing. */

import { byId, clear, el } from "./dom.js";
import { lang, t } from "./i18n.js";
import { formatValue } from "./report-chart.js";
import { NUMERIC } from "./report-drill.js";
import { addDays } from "./report-period.js";

/** @param {unknown} x */
function numberOrNull(x) {
  if (x === null || x === undefined || x === "") return null;
  const n = Number(x);
  return isNaN(n) ? null : n;
}

/**
 * The change from *b* (previous) to *a* (current) as shown, and its direction class.
 * @param {string} type the column's type
 * @param {number | null} a
 * @param {number | null} b
 * @returns {[string, string]}
 */
export function change(type, a, b) {
  if (a === null || b === null) return ["—", ""];
  const dir = (/** @type {number} */ d) => (d > 0 ? "up" : d < 0 ? "down" : "");
  if (type === "rate") {
    const d = (a - b) * 100;
    return [(d > 0 ? "+" : "") + d.toFixed(1) + " " + t("reports.points"), dir(d)];
  }
  if (b !== 0) {
    const d = ((a - b) / Math.abs(b)) * 100;
    return [(d > 0 ? "+" : "") + d.toFixed(1) + "%", dir(d)];
  }
  return a > 0 ? [t("reports.new"), "up"] : ["0%", ""];
}

/**
 * Draws the comparison card (#compare-card, its table in #compare), hidden when the report
 * has no previous period or no numeric total.
 * @param {any} body the report's answer
 * @param {(c: any) => string} label a column's heading
 */
export function drawCompare(body, label) {
  const card = byId("compare-card");
  const prev = body.previous;
  const cur = body.totals || {};
  if (!prev || !body.from) {
    card.hidden = true;
    return;
  }
  const span = Math.round((Date.parse(body.to) - Date.parse(body.from)) / 86400000) + 1;
  const prevTo = addDays(body.from, -1);
  const prevFrom = addDays(prevTo, -(span - 1));
  const cols = (body.columns || []).filter((/** @type {any} */ c) => c.key in prev && NUMERIC.has(c.type));
  const rows = cols.map((/** @type {any} */ c) => {
    const [shown, cls] = change(c.type, numberOrNull(cur[c.key]), numberOrNull(prev[c.key]));
    return el("tr", { dataset: { key: c.key } },
      el("th", { scope: "row", text: label(c) }),
      el("td", { class: "num", dataset: { testid: "compare-current" } }, formatValue(c.type, cur[c.key], lang)),
      el("td", { class: "num", dataset: { testid: "compare-previous" } }, formatValue(c.type, prev[c.key], lang)),
      el("td", { class: "num change " + cls, dataset: { testid: "compare-change" } }, shown));
  });
  if (!rows.length) {
    card.hidden = true;
    return;
  }
  clear(byId("compare")).appendChild(el("div", { class: "table-wrap" }, el("table", { class: "data report-compare-table" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: t("reports.measure") }),
      el("th", { scope: "col", class: "num", text: t("reports.current", { from: body.from, to: body.to }) }),
      el("th", { scope: "col", class: "num", text: t("reports.previous", { from: prevFrom, to: prevTo }) }),
      el("th", { scope: "col", class: "num", text: t("reports.change") }))),
    el("tbody", {}, rows))));
  card.hidden = false;
}
