// @ts-check
/* A report's drill-down dialog (docs/API.md "Reports", GET /api/v1/reports/{name}/drill): the
   rows behind a clicked count, paged, with CSV/XLSX links of the same query. The page hands
   in how to name a column and how to build the query (its filters, the measure, the row's
   keys), so the dialog knows nothing of the filter bar. */
import { api } from "./api.js";
import { byId, clear, el } from "./dom.js";
import { lang, t } from "./i18n.js";
import { formatValue } from "./report-chart.js";
import { pager, table } from "./table.js";
import { complianceBadge, emptyState, errorState, loading, statusLabel } from "./ui.js";

/** Column types drawn right-aligned and sorted as numbers. */
export const NUMERIC = new Set(["count", "number", "kg", "rate"]);

/**
 * @typedef {object} DrillOptions
 * @property {string} apiPath the report's path, /api/v1/reports/{name}
 * @property {number} pageSize rows per page of the dialog
 * @property {(c: any) => string} label a column's label in the page's language
 * @property {(keys: Record<string, string>, measure: string, more: Record<string, unknown>) => string} query
 *   the drill-down's query string
 */

/** @param {any} c @param {any} r @param {string} target what the rows are */
function drillCell(c, r, target) {
  const v = r[c.key];
  if (target === "cylinders" && c.key === "id" && v) return el("a", { href: "/cylinders/" + encodeURIComponent(String(v)), text: String(v) });
  if (c.key === "compliance") return complianceBadge(v);
  if (c.key === "status" && v) return statusLabel(String(v));
  return formatValue(c.type, v, lang);
}

/**
 * Wire the page's #drill-dialog; returns the function that opens it on a count.
 * @param {DrillOptions} opts
 * @returns {(c: any, keys: Record<string, string>, row: any) => void}
 */
export function drillDialog(opts) {
  const dialog = /** @type {HTMLDialogElement} */ (byId("drill-dialog"));
  /** @type {{col: any, keys: Record<string, string>, page: number} | null} */
  let drill = null;

  /** @param {number} page */
  async function load(page) {
    if (!drill) return;
    drill.page = page;
    const box = byId("drill-results");
    const pagerNode = byId("drill-pager");
    loading(box);
    clear(pagerNode);
    const current = drill;
    try {
      const env = await api(opts.apiPath + "/drill" + opts.query(current.keys, current.col.key, { page, page_size: opts.pageSize }));
      if (drill !== current) return;
      const items = env.items || [];
      if (!items.length) {
        emptyState(box, "reports.empty", null);
        return;
      }
      const cols = (env.columns || []).map((/** @type {any} */ c) => ({
        label: opts.label(c),
        render: (/** @type {any} */ r) => drillCell(c, r, env.target),
        cls: NUMERIC.has(c.type) ? "num" : c.type === "code" ? "mono" : undefined,
        sort: (/** @type {any} */ r) => (NUMERIC.has(c.type) ? Number(r[c.key]) : r[c.key]),
      }));
      clear(box).appendChild(table(cols, items));
      pager(pagerNode, env, load);
    } catch (err) {
      if (drill === current) errorState(box, /** @type {Error} */ (err));
    }
  }

  byId("drill-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { drill = null; });

  return (c, keys, row) => {
    drill = { col: c, keys, page: 1 };
    const what = Object.keys(keys).length ? Object.values(keys).map((v) => v || "—").join(" · ") : t("reports.totals");
    byId("drill-title").textContent = opts.label(c) + " · " + what;
    byId("drill-sub").textContent = t("reports.drill_count", { n: formatValue(c.type, row[c.key], lang) });
    byId("drill-csv").setAttribute("href", opts.apiPath + "/drill" + opts.query(keys, c.key, { format: "csv" }));
    byId("drill-xlsx").setAttribute("href", opts.apiPath + "/drill" + opts.query(keys, c.key, { format: "xlsx" }));
    if (!dialog.open) dialog.showModal();
    load(1);
  };
}
