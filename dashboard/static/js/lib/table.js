// @ts-check
/* Tables of rows from the list endpoints (docs/API.md "Paging"): a table whose columns may
   sort the rows on screen, a pager, export links that follow the filters, and listPage —
   the search page every list (cylinders, fills, alerts, users, dead letters, reports) is:
   filters in the URL, paged rows, honest empty states. */
import { api, qs } from "./api.js";
import { config } from "./config.js";
import { clear, el, formFromUrl, formValues } from "./dom.js";
import { t } from "./i18n.js";
import { number, text } from "./format.js";
import { emptyState, errorState, loading } from "./ui.js";

/**
 * @typedef {object} Column
 * @property {string} label a string key
 * @property {string} [key] the row field shown as text (when there is no render)
 * @property {(row: any) => (Node | string | null | undefined)} [render]
 * @property {(row: any) => (string | number | null | undefined)} [sort] makes the column sortable
 * @property {string} [cls]
 * @typedef {{total: number, page: number, page_size: number, items?: any[]}} Envelope
 */

/**
 * @param {unknown} a
 * @param {unknown} b
 */
function compare(a, b) {
  if (a === b) return 0;
  if (a === undefined || a === null || a === "") return 1;
  if (b === undefined || b === null || b === "") return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

/**
 * A table of *rows*; a column with `sort` gets a header button ordering the rows shown.
 * @param {Column[]} columns
 * @param {any[]} rows
 * @param {(row: any) => Record<string, unknown>} [rowAttrs]
 */
export function table(columns, rows, rowAttrs) {
  const tbody = el("tbody");
  /** @type {{index: number, dir: number} | null} */
  let order = null;

  /** @param {any} r */
  const row = (r) => el("tr", rowAttrs ? rowAttrs(r) : {}, columns.map((c) => {
    const v = c.render ? c.render(r) : text(c.key ? r[c.key] : undefined);
    return el("td", { class: c.cls || null }, v === undefined || v === null ? "—" : v);
  }));

  const fill = () => {
    let shown = rows;
    if (order) {
      const col = columns[order.index];
      const dir = order.dir;
      const key = /** @type {(row: any) => unknown} */ (col.sort);
      shown = rows.slice().sort((a, b) => dir * compare(key(a), key(b)));
    }
    clear(tbody);
    for (const r of shown) tbody.appendChild(row(r));
  };

  const heads = columns.map((c, index) => {
    const th = el("th", { scope: "col", class: c.cls || null });
    if (!c.sort) {
      th.textContent = t(c.label);
      return th;
    }
    th.appendChild(el("button", {
      type: "button",
      class: "th-sort",
      onclick: () => {
        const dir = order && order.index === index ? -order.dir : 1;
        order = { index, dir };
        heads.forEach((h, i) => {
          if (i === index) h.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
          else h.removeAttribute("aria-sort");
        });
        fill();
      },
    }, t(c.label)));
    return th;
  });
  fill();
  return el("div", { class: "table-wrap" }, el("table", { class: "data" }, el("thead", {}, el("tr", {}, heads)), tbody));
}

/**
 * "N total · page X / Y" and prev/next buttons calling onPage(page).
 * @param {HTMLElement} container
 * @param {Envelope} env
 * @param {(page: number) => unknown} onPage
 */
export function pager(container, env, onPage) {
  clear(container);
  const pages = Math.max(1, Math.ceil((env.total || 0) / (env.page_size || 1)));
  container.appendChild(el("span", { dataset: { testid: "total" }, text: t("pager.summary", { total: number(env.total, 0), page: env.page, pages }) }));
  container.appendChild(el("nav", { class: "pager", "aria-label": t("pager.label") },
    el("button", { class: "btn btn-sm", type: "button", disabled: env.page <= 1, onclick: () => onPage(env.page - 1) }, t("pager.prev")),
    el("button", { class: "btn btn-sm", type: "button", disabled: env.page >= pages, onclick: () => onPage(env.page + 1) }, t("pager.next"))));
}

/**
 * Point every download link `<a data-export="csv|xlsx">` at *base* with the current filters.
 * @param {string} base an export endpoint
 * @param {Record<string, unknown>} values the filters
 * @param {string[]} keys the filters the endpoint knows
 */
export function exportLinks(base, values, keys) {
  /** @type {Record<string, unknown>} */
  const picked = {};
  for (const k of keys) if (values[k]) picked[k] = values[k];
  document.querySelectorAll("a[data-export]").forEach((a) => {
    a.setAttribute("href", base + qs({ format: /** @type {HTMLElement} */ (a).dataset.export, ...picked }));
  });
}

/**
 * @typedef {object} ListPageOptions
 * @property {string} endpoint
 * @property {Column[]} columns
 * @property {string} [form] id of the filter form ("search-form")
 * @property {string} [results] id of the results box ("results")
 * @property {string} [pager] id of the pager box ("pager")
 * @property {number} [pageSize] (page config page_size)
 * @property {(values: Record<string, any>) => Record<string, any>} [query] filters -> API query
 * @property {(row: any) => Record<string, unknown>} [rowAttrs]
 * @property {string} [emptyTitle]
 * @property {string} [emptyHint]
 * @property {string} [emptyIcon]
 * @property {{base: string, keys: string[]}} [exports] download links following the filters
 */

/** @param {ListPageOptions} opts */
export function listPage(opts) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById(opts.form || "search-form"));
  const results = /** @type {HTMLElement} */ (document.getElementById(opts.results || "results"));
  const pagerBox = /** @type {HTMLElement} */ (document.getElementById(opts.pager || "pager"));
  let current = 1;

  /** @param {number} page */
  async function load(page) {
    current = page || 1;
    const values = formValues(form);
    const query = opts.query ? opts.query({ ...values }) : { ...values };
    query.page = current;
    query.page_size = opts.pageSize || config.page_size;
    history.replaceState(null, "", location.pathname + qs(current > 1 ? { page: current, ...values } : values));
    loading(results);
    clear(pagerBox);
    if (opts.exports) exportLinks(opts.exports.base, values, opts.exports.keys);
    try {
      /** @type {Envelope} */
      const env = await api(opts.endpoint, { query });
      const items = env.items || [];
      if (!items.length) {
        // with filters set, "nothing matches" is the honest hint, not "all is well"
        const filtered = Object.keys(values).length > 0;
        emptyState(results, opts.emptyTitle || "common.empty",
          filtered ? "common.empty_hint" : opts.emptyHint || "common.empty_hint", filtered ? "∅" : opts.emptyIcon);
      } else {
        clear(results).appendChild(table(opts.columns, items, opts.rowAttrs));
      }
      if (items.length || current > 1) pager(pagerBox, env, load);
      return env;
    } catch (err) {
      errorState(results, /** @type {Error} */ (err));
      return null;
    }
  }

  const params = formFromUrl(form);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(1); });
  form.addEventListener("reset", () => setTimeout(() => load(1), 0));
  const ready = load(Number(params.get("page")) || 1);
  return { load, reload: () => load(current), ready };
}
