// @ts-check
/* One report on screen (/reports/{name}; docs/API.md "Reports", the report frame): the filter
   bar built from the catalogue's `filters`, kept in the URL (shareable; the back button
   walks the filters), the chart (lib/report-chart.js), the previous period beside the
   current one, the table sorted by a click on a header and paged on screen, drill-down
   from a count to its rows (GET /api/v1/reports/{name}/drill, paged, exportable), CSV/XLSX
   of what is on screen, a print layout and "schedule this report".

   A report not yet built in the frame (no `columns` in the catalogue) is offered as a
   download with the filters its route takes (page config `params`). */
import { api, qs } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { lang, t, tOr } from "./lib/i18n.js";
import { createChart } from "./lib/chart.js";
import { columnLabel, drawReportChart, formatValue, needsDistricts } from "./lib/report-chart.js";
import { NUMERIC, drillDialog } from "./lib/report-drill.js";
import { drawCompare } from "./lib/report-compare.js";
import { quickPeriod } from "./lib/report-period.js";
import { pager } from "./lib/table.js";
import { emptyState, errorState, loading } from "./lib/ui.js";

const NAME = String(config.report);
const API_PATH = "/api/v1/reports/" + encodeURIComponent(NAME);
const FILTER_NAMES = ["from", "to", "group", "district", "company", "station"];
/** Column types right-aligned as numbers. */
/** A4 landscape less its margins at 96 dpi (277 mm): the chart's width when printed. */
const PRINT_CHART_PX = 1040;
const PAGE_SIZE = Number(config.page_size) || 50;
const DRILL_PAGE_SIZE = Number(config.drill_page_size) || PAGE_SIZE;

const form = /** @type {HTMLFormElement} */ (byId("report-form"));
const stateBox = byId("report-state");
const results = byId("results");
const pagerBox = byId("pager");

/** @type {any} the catalogue entry */
let entry = null;
/** @type {any} the last report body */
let body = null;
/** @type {any} */
let chart = null;
/** @type {any} the districts' GeoJSON, fetched once for a choropleth */
let geo = null;
/** @type {{sort: string, dir: number, page: number}} */
const view = { sort: "", dir: 1, page: 1 };
let printing = false;
let seq = 0;

// ---------------------------------------------------------------- filters and the URL

/** The filter names this report takes (framed: the catalogue's; legacy: its route's). */
function accepted() {
  if (entry && entry.columns) {
    const f = new Set(entry.filters || []);
    const names = [];
    if (f.has("period")) names.push("from", "to");
    for (const n of ["group", "district", "company", "station"]) if (f.has(n)) names.push(n);
    return [...names, ...(entry.params || [])];
  }
  const params = /** @type {string[]} */ (config.params || []);
  return FILTER_NAMES.filter((n) => params.includes(n));
}

/** The form's filters this report takes, empty ones left out. */
function filters() {
  /** @type {Record<string, string>} */
  const out = {};
  const data = new FormData(form);
  for (const n of accepted()) {
    const v = data.get(n);
    if (v !== null && v !== "") out[n] = String(v);
  }
  return out;
}

/** The form and the view from the page's URL. */
function fromUrl() {
  const params = new URLSearchParams(location.search);
  for (const n of accepted()) {
    const field = /** @type {HTMLInputElement | HTMLSelectElement | null} */ (form.elements.namedItem(n));
    if (!field) continue;
    const v = params.get(n) || "";
    if (field instanceof HTMLSelectElement && n === "group") field.value = v || "day";
    else field.value = v;
  }
  syncStations();
  view.sort = params.get("sort") || "";
  view.dir = params.get("dir") === "desc" ? -1 : 1;
  view.page = Math.max(1, Number(params.get("page")) || 1);
}

/** @param {boolean} push a new history entry (a filter changed) or replace (sort, page) */
function toUrl(push) {
  const q = { ...filters(), sort: view.sort || undefined, dir: view.sort && view.dir < 0 ? "desc" : undefined, page: view.page > 1 ? view.page : undefined };
  const url = location.pathname + qs(q);
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** Show the stations of the chosen company only. */
function syncStations() {
  const company = /** @type {HTMLSelectElement} */ (form.elements.namedItem("company")).value;
  const select = /** @type {HTMLSelectElement} */ (form.elements.namedItem("station"));
  for (const opt of Array.from(select.options)) {
    if (!opt.value) continue;
    const own = !company || opt.dataset.company === company || opt.dataset.companyCode === company;
    opt.hidden = !own;
    opt.disabled = !own;
    if (!own && opt.selected) select.value = "";
  }
}

function buildFilterBar() {
  const names = new Set(accepted());
  const has = (/** @type {string} */ n) => names.has(n);
  /** @type {HTMLSelectElement} */
  const district = /** @type {any} */ (form.elements.namedItem("district"));
  for (const d of config.districts || []) {
    district.appendChild(el("option", { value: d.code, text: (lang === "en" && d.name_en) || d.name }));
  }
  const companies = /** @type {any[]} */ (config.companies || []);
  const company = /** @type {HTMLSelectElement} */ (form.elements.namedItem("company"));
  for (const c of companies) company.appendChild(el("option", { value: String(c.id), text: c.name }));
  const station = /** @type {HTMLSelectElement} */ (form.elements.namedItem("station"));
  for (const s of config.stations || []) {
    station.appendChild(el("option", { value: String(s.id), text: s.name + " (" + s.code + ")", dataset: { company: String(s.company_id || "") } }));
  }
  /** @type {Record<string, boolean>} */
  const show = {
    period: has("from"),
    group: has("group"),
    district: has("district") && (config.districts || []).length > 0,
    // a company admin sees one company: nothing to choose
    company: has("company") && companies.length > 1,
    station: has("station") && (config.stations || []).length > 0,
  };
  form.querySelectorAll("[data-filter]").forEach((node) => {
    const key = /** @type {HTMLElement} */ (node).dataset.filter || "";
    /** @type {HTMLElement} */ (node).hidden = !show[key];
  });
  const extra = byId("extra-params");
  for (const p of (entry && entry.params) || []) {
    extra.appendChild(el("label", { class: "field" }, el("span", { text: tOr("reports.param." + p, p) }), el("input", { name: p, autocomplete: "off", dataset: { testid: "filter-" + p } })));
  }
  if (!Object.values(show).some(Boolean) && !(entry && entry.params && entry.params.length)) byId("filters-card").hidden = true;
}

// ---------------------------------------------------------------- links

/**
 * The moment a report counting today's cylinders was taken (its `as_of`: the census refresh,
 * docs/API.md "Reports"), in the browser's clock; nothing for the other reports.
 * @param {any} res
 */
function censusNote(res) {
  if (!res || !res.as_of) return "";
  const at = new Date(res.as_of);
  if (Number.isNaN(at.getTime())) return "";
  return " · " + t("reports.census_at", { time: at.toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) });
}

/** CSV/XLSX of what is on screen, the schedule link and the print line follow the filters. */
function updateLinks() {
  const f = filters();
  byId("export-csv").setAttribute("href", API_PATH + qs({ format: "csv", ...f }));
  byId("export-xlsx").setAttribute("href", API_PATH + qs({ format: "xlsx", ...f }));
  byId("schedule-link").setAttribute("href", String(config.schedules_path || "/reports/schedules") + qs({ report: NAME, ...f }));
  const parts = [];
  if (body && body.from) parts.push(t("reports.period") + ": " + body.from + " – " + body.to);
  else if (body && body.date) parts.push(t("reports.as_of", { date: body.date }));
  for (const n of ["group", "district", "company", "station"]) {
    const field = /** @type {HTMLSelectElement | null} */ (form.elements.namedItem(n));
    if (f[n] && field && field.selectedIndex >= 0) parts.push(t(n === "group" ? "reports.group" : n === "station" ? "reports.station" : "filter." + n) + ": " + field.options[field.selectedIndex].text);
  }
  byId("print-filters").textContent = parts.join(" · ");
}

// ---------------------------------------------------------------- the report

/** @param {any} c a column */
function label(c) {
  return columnLabel(c, lang);
}

/** @param {any} c */
function drillable(c) {
  return !!(entry && entry.drill && c.drill);
}

/**
 * A cell: a count with a drill-down is a button opening its rows.
 * @param {any} c
 * @param {any} row
 * @param {Record<string, string>} keys the row's key values ({} for the totals)
 */
function cell(c, row, keys) {
  const v = row[c.key];
  const shown = formatValue(c.type, v, lang);
  const n = Number(v);
  if (drillable(c) && v !== null && v !== undefined && n > 0) {
    return el("button", {
      type: "button",
      class: "drill-link",
      dataset: { testid: "drill", measure: c.key },
      title: t("reports.drill_open"),
      onclick: () => openDrill(c, keys, row),
    }, shown);
  }
  return shown;
}

/**
 * The row's key values, sent back with a drill-down; a null key is sent empty (the frame
 * reads `key=` as IS NULL, and a key not sent at all as any value).
 * @param {any} row
 */
function keysOf(row) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const k of (entry && entry.keys) || []) {
    const v = row[k];
    out[k] = v === null || v === undefined ? "" : String(v);
  }
  return out;
}

/**
 * A drill-down's query string: the filters, the measure, the keys (empty ones kept), more.
 * @param {Record<string, string>} keys
 * @param {string} measure
 * @param {Record<string, unknown>} more
 */
function drillQuery(keys, measure, more) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters())) params.append(k, v);
  params.append("measure", measure);
  for (const [k, v] of Object.entries(keys)) params.append(k, v);
  for (const [k, v] of Object.entries(more)) if (v !== undefined && v !== null && v !== "") params.append(k, String(v));
  return "?" + params.toString();
}

/** Opens the drill-down dialog on a count (lib/report-drill.js). */
const openDrill = drillDialog({ apiPath: API_PATH, pageSize: DRILL_PAGE_SIZE, label, query: drillQuery });

/** @param {any} a @param {any} b @param {string} type */
function compare(a, b, type) {
  const emptyA = a === null || a === undefined || a === "";
  const emptyB = b === null || b === undefined || b === "";
  if (emptyA || emptyB) return emptyA === emptyB ? 0 : emptyA ? 1 : -1;
  if (NUMERIC.has(type)) return Number(a) - Number(b);
  return String(a).localeCompare(String(b), lang);
}

function sortedRows() {
  const rows = /** @type {any[]} */ (body.rows || []);
  const col = (body.columns || []).find((/** @type {any} */ c) => c.key === view.sort);
  if (!col) return rows;
  return rows.slice().sort((a, b) => view.dir * compare(a[col.key], b[col.key], col.type));
}

function drawTable() {
  const columns = /** @type {any[]} */ (body.columns || []);
  const rows = sortedRows();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  if (view.page > pages) view.page = pages;
  const shown = printing ? rows : rows.slice((view.page - 1) * PAGE_SIZE, view.page * PAGE_SIZE);
  const heads = columns.map((c) => {
    const th = el("th", { scope: "col", class: NUMERIC.has(c.type) ? "num" : null, dataset: { key: c.key } });
    if (view.sort === c.key) th.setAttribute("aria-sort", view.dir > 0 ? "ascending" : "descending");
    th.appendChild(el("button", {
      type: "button",
      class: "th-sort",
      onclick: () => {
        view.dir = view.sort === c.key ? -view.dir : NUMERIC.has(c.type) ? -1 : 1;
        view.sort = c.key;
        view.page = 1;
        toUrl(false);
        drawTable();
      },
    }, label(c)));
    return th;
  });
  const tbody = el("tbody", {}, shown.map((r) => {
    const keys = keysOf(r);
    return el("tr", {}, columns.map((c) => el("td", { class: NUMERIC.has(c.type) ? "num" : c.type === "code" ? "mono" : null }, cell(c, r, keys))));
  }));
  const totals = body.totals;
  const tfoot = totals ? el("tfoot", {}, el("tr", { class: "report-totals", dataset: { testid: "totals" } }, columns.map((c, i) => {
    if (c.key in totals) return el("td", { class: NUMERIC.has(c.type) ? "num" : null, dataset: { key: c.key } }, cell(c, totals, {}));
    return el("td", { text: i === 0 ? t("reports.totals") : "" });
  }))) : null;
  clear(results).appendChild(el("div", { class: "table-wrap" }, el("table", { class: "data report-table", dataset: { testid: "report-table" } }, el("thead", {}, el("tr", {}, heads)), tbody, tfoot)));
  if (rows.length > PAGE_SIZE && !printing) {
    pager(pagerBox, { total: rows.length, page: view.page, page_size: PAGE_SIZE }, (page) => {
      view.page = page;
      toUrl(false);
      drawTable();
    });
  } else {
    clear(pagerBox).appendChild(el("span", { dataset: { testid: "total" }, text: t("reports.rows", { n: rows.length }) }));
  }
  byId("drill-hint").hidden = !columns.some(drillable);
}

async function drawChart() {
  const card = byId("chart-card");
  const spec = entry.chart;
  if (!spec) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const node = byId("report-chart");
  if (!chart) chart = createChart(node);
  if ((needsDistricts(spec) || /district/.test(spec.x)) && !geo) {
    try {
      geo = await api(String(config.districts_url || "/reports/data/districts"));
    } catch {
      geo = null; // the same numbers as bars
    }
  }
  chart.resize();
  drawReportChart(chart, body, spec, { lang, geo, emptyLabel: t("reports.empty"), period: { from: body.from, to: body.to, group: body.group } });
  node.dataset.drawn = String((body.rows || []).length);
}

/** @param {boolean} push */
async function load(push) {
  const mine = ++seq;
  toUrl(push);
  updateLinks();
  loading(stateBox);
  stateBox.hidden = false;
  try {
    const res = await api(API_PATH, { query: filters() });
    if (mine !== seq) return;
    body = res;
    // an open period shows the one the server chose (its default range)
    const from = /** @type {HTMLInputElement} */ (form.elements.namedItem("from"));
    const to = /** @type {HTMLInputElement} */ (form.elements.namedItem("to"));
    if (body.from && !from.value) from.value = body.from;
    if (body.to && !to.value) to.value = body.to;
    byId("report-sub").textContent = (body.from ? t("reports.period") + " " + body.from + " – " + body.to : t("reports.as_of", { date: body.date })) + censusNote(body);
    updateLinks();
    const rows = body.rows || [];
    clear(stateBox);
    stateBox.hidden = true;
    byId("table-card").hidden = false;
    if (!rows.length) {
      byId("chart-card").hidden = true;
      byId("compare-card").hidden = true;
      emptyState(results, "reports.empty", "reports.empty_hint");
      clear(pagerBox);
    } else {
      drawCompare(body, label);
      drawTable();
      await drawChart();
    }
    document.body.dataset.ready = "1";
  } catch (err) {
    if (mine !== seq) return;
    errorState(stateBox, /** @type {Error} */ (err));
    byId("table-card").hidden = true;
    byId("chart-card").hidden = true;
    byId("compare-card").hidden = true;
    document.body.dataset.ready = "1";
  }
}

// ---------------------------------------------------------------- a report not yet framed

function legacy() {
  const title = tOr("report." + NAME, entry.summary || NAME);
  byId("report-title").textContent = title;
  document.title = title + " · " + t("app.name");
  clear(stateBox).appendChild(el("div", { class: "alert-box alert-info", dataset: { testid: "download-only" } },
    el("p", { text: tOr("report." + NAME + ".hint", entry.summary || "") }),
    el("p", { text: t("reports.download_only_hint") })));
  byId("print-report").hidden = true;
  byId("schedule-link").hidden = true;
  updateLinks();
  document.body.dataset.ready = "1";
}

// ---------------------------------------------------------------- wiring

form.addEventListener("change", (ev) => {
  const target = /** @type {HTMLElement} */ (ev.target);
  if (target && target.getAttribute("name") === "company") syncStations();
  view.page = 1;
  if (entry && entry.columns) load(true);
  else { toUrl(true); updateLinks(); }
});
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (entry && entry.columns) load(true);
});
form.addEventListener("reset", () => setTimeout(() => {
  /** @type {HTMLSelectElement} */ (form.elements.namedItem("group")).value = "day";
  syncStations();
  view.page = 1;
  if (entry && entry.columns) load(true);
  else { toUrl(true); updateLinks(); }
}, 0));
form.querySelectorAll("[data-quick]").forEach((b) => b.addEventListener("click", () => {
  const [from, to] = quickPeriod(/** @type {HTMLElement} */ (b).dataset.quick || "", String(config.today || new Date().toISOString().slice(0, 10)));
  /** @type {HTMLInputElement} */ (form.elements.namedItem("from")).value = from;
  /** @type {HTMLInputElement} */ (form.elements.namedItem("to")).value = to;
  view.page = 1;
  if (entry && entry.columns) load(true);
  else { toUrl(true); updateLinks(); }
}));
window.addEventListener("popstate", () => {
  fromUrl();
  if (entry && entry.columns) load(false);
  else updateLinks();
});
byId("print-report").addEventListener("click", () => window.print());
// printed: every row, the chart at the paper's width
window.addEventListener("beforeprint", () => {
  if (!body) return;
  printing = true;
  drawTable();
  if (chart) chart.resize({ width: PRINT_CHART_PX });
});
window.addEventListener("afterprint", () => {
  if (!body) return;
  printing = false;
  drawTable();
  if (chart) chart.resize();
});

api("/api/v1/reports")
  .then((res) => {
    entry = (res.items || []).find((/** @type {any} */ r) => r.name === NAME) || null;
    if (!entry) {
      emptyState(stateBox, "reports.unknown_title", null);
      document.body.dataset.ready = "1";
      return;
    }
    buildFilterBar();
    fromUrl();
    if (!entry.columns) {
      legacy();
      return;
    }
    const title = lang === "en" ? entry.title_en || entry.title : entry.title || entry.title_en;
    byId("report-title").textContent = title;
    document.title = title + " · " + t("app.name");
    load(false);
  })
  .catch((err) => {
    errorState(stateBox, err);
    document.body.dataset.ready = "1";
  });
