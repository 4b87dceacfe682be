// @ts-check
/* Fill log (GET /api/v1/fills): newest first, filtered by time, station, company, result and
   failed check item; each fill's pre/post-fill checks in a dialog, item by item, pass or fail;
   the failed checks per company and per item over the same period, district, company and
   station (GET /api/v1/fills/check-summary) as a table and a chart, each count leading to its
   fills; every filtered fill as CSV/XLSX (the list's own query with format=). */
import { api, qs } from "./lib/api.js";
import { THEMES, axisStyle, createChart, emptyGraphic, rem } from "./lib/chart.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, dateTime, number, text, dayInstant } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { listPage, table } from "./lib/table.js";
import { badge, emptyState, errorState, loading } from "./lib/ui.js";

const form = /** @type {HTMLFormElement} */ (byId("search-form"));
const FILTERS = ["from", "to", "station", "company", "district", "tag", "result", "assessment", "failed_check"];
/** The filters the check summary takes (server/api/fill_checks.py SUMMARY_FILTERS). */
const SUMMARY_FILTERS = ["from", "to", "district", "company", "station"];
/** Failed items named in a company's row of the summary; the rest are in the by-item list. */
const TOP_ITEMS = 3;
const DAY_MS = 86_400_000;
/** The domain's check items in order, as the failed-check filter lists them (pre:… then post:…). */
const KNOWN = Array.from(/** @type {HTMLSelectElement} */ (form.elements.namedItem("failed_check")).options)
  .map((o) => o.value).filter((v) => v && v !== "any");

/** The badge colour of a fill assessment (overfill is the dangerous one). @param {string} a */
const assessmentTone = (a) => (a === "ok" ? "ok" : a === "overfill" ? "overdue" : "inspection_due");

/** Form values -> API query: days as the instants they start and end. @param {Record<string, any>} v */
const toQuery = (v) => ({ ...v, from: dayInstant(v.from), to: dayInstant(v.to, true) });

/** @param {string} check "pre:<item>" or "post:<item>" */
function checkLabel(check) {
  return tOr("fill.check." + check, check.slice(check.indexOf(":") + 1) + " " + t("fills.checks.item_unknown"));
}

/** An item's label under its list's heading: without the list's name ("Pre-fill · "). @param {string} check */
function itemLabel(check) {
  const label = checkLabel(check);
  const cut = label.indexOf(" · ");
  return KNOWN.includes(check) && cut > 0 ? label.slice(cut + 3) : label;
}

// ---------------------------------------------------------------- one fill's checks
const dialog = /** @type {HTMLDialogElement} */ (byId("checks-dialog"));

/**
 * One check list of a fill (pre or post): each item with its mark, known items in the
 * domain's order, the device's others after them.
 * @param {"pre" | "post"} stage
 * @param {Record<string, unknown> | null} checks
 */
function checkList(stage, checks) {
  const box = el("section", { class: "check-list", dataset: { stage, testid: "checks-" + stage } },
    el("h3", { text: t("fills.checks." + stage) }));
  if (!checks || typeof checks !== "object" || Array.isArray(checks)) {
    box.appendChild(el("p", { class: "muted", text: t("fills.checks.not_recorded") }));
    return box;
  }
  const keys = Object.keys(checks).map((item) => stage + ":" + item);
  const order = (/** @type {string} */ k) => (KNOWN.includes(k) ? KNOWN.indexOf(k) : KNOWN.length);
  keys.sort((a, b) => order(a) - order(b) || a.localeCompare(b));
  box.appendChild(el("ul", { class: "check-items" }, keys.map((key) => {
    const passed = checks[key.slice(stage.length + 1)] === true; // only true passes (server.domain.filling)
    return el("li", { class: passed ? "check-pass" : "check-fail", dataset: { check: key, passed: String(passed) } },
      el("span", { class: "check-mark", "aria-hidden": "true", text: passed ? "✓" : "✗" }),
      el("span", { class: "check-label", text: itemLabel(key) }),
      badge(passed ? "ok" : "overdue", t(passed ? "fills.checks.pass" : "fills.checks.fail")));
  })));
  return box;
}

/** @param {any} r a fill */
function openChecks(r) {
  byId("checks-fill").textContent = [dateTime(r.ts), r.station_name || r.gun_id, t("fills.checks.cylinder") + " " + r.tag,
    tOr("fill.result." + r.result, r.result)].filter(Boolean).join(" · ");
  clear(byId("checks-lists")).append(checkList("pre", r.pre_check), checkList("post", r.post_check));
  dialog.showModal();
}

/** @param {any} r a fill */
function checksCell(r) {
  const failed = r.failed_checks || [];
  const recorded = r.pre_check || r.post_check;
  const mark = !recorded
    ? el("span", { class: "muted", text: t("fills.checks.none") })
    : failed.length
      ? badge("overdue", t("fills.checks.failed_n", { n: failed.length }))
      : badge("ok", t("fills.checks.all_passed"));
  mark.title = failed.map(checkLabel).join("\n");
  return el("div", { class: "cell-actions" }, mark,
    el("button", { class: "btn btn-sm", type: "button", dataset: { testid: "checks-open" }, onclick: () => openChecks(r) }, t("fills.checks.open")));
}

// ---------------------------------------------------------------- the summary
const companiesBox = byId("summary-companies");
const itemsBox = byId("summary-items");
const chartBox = byId("summary-chart");
const chart = createChart(chartBox);
const theme = THEMES.light;

/**
 * Show the fills behind a count: the list filtered by the company (if any) and the item.
 * @param {number | null} companyId
 * @param {string} check "any" or "pre:<item>"
 */
function drill(companyId, check) {
  const fields = form.elements;
  if (companyId !== null) /** @type {HTMLSelectElement} */ (fields.namedItem("company")).value = String(companyId);
  /** @type {HTMLSelectElement} */ (fields.namedItem("failed_check")).value = check;
  form.requestSubmit();
}

/**
 * A count that lists its fills when clicked (a zero is plain text).
 * @param {number} n
 * @param {number | null} companyId
 * @param {string} check
 */
function countLink(n, companyId, check) {
  if (!n) return el("span", { class: "muted", text: "0" });
  return el("button", { class: "btn-link", type: "button", title: t("fills.summary.show"),
    dataset: { testid: "summary-drill", check }, onclick: () => drill(companyId, check) }, number(n, 0));
}

/** @param {any} c a company's row */
function topItems(c) {
  const entries = Object.entries(c.items || {}).sort((a, b) => Number(b[1]) - Number(a[1])).slice(0, TOP_ITEMS);
  return el("div", { class: "cell-stack" }, entries.map(([check, n]) =>
    el("span", {}, el("span", { text: checkLabel(check) + " " }), countLink(Number(n), c.company_id, check))));
}

/** @param {any[]} items the per-item counts */
function drawChart(items) {
  const r = rem();
  const shown = items.filter((i) => i.known || i.failed > 0).slice().reverse(); // first item on top
  const empty = shown.every((i) => i.failed === 0);
  chart.setOption({
    animation: false,
    grid: { left: 8, right: 32, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: "value", minInterval: 1, ...axisStyle(theme, r) },
    yAxis: { type: "category", data: shown.map((i) => checkLabel(i.check)), ...axisStyle(theme, r) },
    tooltip: { trigger: "axis" },
    series: [{
      type: "bar",
      name: t("fills.summary.failed"),
      data: shown.map((i) => ({ value: i.failed, itemStyle: { color: i.stage === "pre" ? theme.palette[1] : theme.palette[2] } })),
      label: { show: true, position: "right", color: theme.strong },
      barMaxWidth: 18,
    }],
    graphic: emptyGraphic(theme, r, empty, t("fills.summary.none")),
  }, true);
  chartBox.dataset.drawn = String(shown.reduce((a, i) => a + i.failed, 0));
}

/** @param {any} body GET /api/v1/fills/check-summary */
function renderSummary(body) {
  const days = Math.round(((body.to ? Date.parse(body.to) : Date.now()) - Date.parse(body.from)) / DAY_MS);
  const chosen = formValues(form); // the days as chosen (the API's `to` is the next day's start)
  byId("summary-period").textContent = chosen.from || chosen.to
    ? t("fills.summary.period", { from: chosen.from || date(body.from), to: chosen.to || t("fills.summary.now") })
    : t("fills.summary.period_default", { days, from: date(body.from) });
  const rows = body.companies || [];
  if (!rows.length) {
    emptyState(companiesBox, "fills.summary.empty", null);
  } else {
    const columns = [
      { label: "fills.summary.company", render: (/** @type {any} */ c) =>
        (c.company_name ? el("span", {}, c.company_name, el("span", { class: "muted mono", text: " " + text(c.company_code) })) : t("fills.summary.no_company")),
      sort: (/** @type {any} */ c) => c.company_code },
      { label: "fills.summary.fills", cls: "num", render: (/** @type {any} */ c) => number(c.fills, 0), sort: (/** @type {any} */ c) => c.fills },
      { label: "fills.summary.failed_fills", cls: "num", render: (/** @type {any} */ c) => countLink(c.failed_fills, c.company_id, "any"), sort: (/** @type {any} */ c) => c.failed_fills },
      { label: "fills.summary.rate", cls: "num", render: (/** @type {any} */ c) => (c.fills ? number((100 * c.failed_fills) / c.fills, 1) + "%" : "—"),
        sort: (/** @type {any} */ c) => (c.fills ? c.failed_fills / c.fills : 0) },
      { label: "fills.summary.failed_items", cls: "num", render: (/** @type {any} */ c) => number(c.failed_items, 0), sort: (/** @type {any} */ c) => c.failed_items },
      { label: "fills.summary.by_item", render: topItems },
    ];
    clear(companiesBox).appendChild(table(columns, rows, (c) => ({ dataset: { companyId: String(c.company_id), companyCode: c.company_code || "" } })));
  }
  const items = body.items || [];
  const listed = items.filter((/** @type {any} */ i) => i.failed > 0);
  clear(itemsBox);
  if (listed.length) {
    itemsBox.appendChild(table([
      { label: "fills.summary.item", render: (/** @type {any} */ i) => checkLabel(i.check) },
      { label: "fills.summary.failed", cls: "num", render: (/** @type {any} */ i) => countLink(i.failed, null, i.check), sort: (/** @type {any} */ i) => i.failed },
    ], listed, (i) => ({ dataset: { check: i.check } })));
  } else {
    itemsBox.appendChild(el("p", { class: "muted", dataset: { testid: "summary-none" }, text: t("fills.summary.none") }));
  }
  drawChart(items);
}

async function loadSummary() {
  const values = formValues(form);
  /** @type {Record<string, any>} */
  const picked = {};
  for (const k of SUMMARY_FILTERS) if (values[k]) picked[k] = values[k];
  const query = toQuery(picked);
  byId("summary-export").setAttribute("href", "/api/v1/fills/check-summary" + qs({ format: "csv", ...query }));
  loading(companiesBox);
  try {
    renderSummary(await api("/api/v1/fills/check-summary", { query }));
  } catch (err) {
    errorState(companiesBox, /** @type {Error} */ (err));
  }
}

/** Point the CSV/XLSX links at every fill the filters select (the list's own query). */
function exportLinks() {
  const values = formValues(form);
  /** @type {Record<string, any>} */
  const picked = {};
  for (const k of FILTERS) if (values[k]) picked[k] = values[k];
  const query = toQuery(picked);
  document.querySelectorAll("a[data-export]").forEach((a) => {
    a.setAttribute("href", "/api/v1/fills" + qs({ format: /** @type {HTMLElement} */ (a).dataset.export, ...query }));
  });
}

// ---------------------------------------------------------------- the list
listPage({
  endpoint: "/api/v1/fills",
  emptyTitle: "fills.empty",
  emptyHint: "fills.empty_hint",
  query: toQuery,
  rowAttrs: (r) => ({ dataset: { msgId: r.msg_id, failed: String((r.failed_checks || []).length) } }),
  columns: [
    { label: "fill.time", render: (r) => dateTime(r.ts), sort: (r) => r.ts },
    { label: "fill.station", render: (r) => (r.station_name ? r.station_name + " (" + r.station_code + ")" : text(r.gun_id)) },
    { label: "cylinder.tag", render: (r) =>
      r.cylinder_id ? el("a", { class: "mono", href: "/cylinders/" + r.cylinder_id, text: r.tag }) : el("span", { class: "mono", text: r.tag }) },
    { label: "cylinder.spec", key: "spec" },
    { label: "fill.net_kg", cls: "num", render: (r) => number(r.net_kg, 2), sort: (r) => Number(r.net_kg) },
    { label: "fill.result", render: (r) => tOr("fill.result." + r.result, r.result) },
    { label: "fill.assessment", render: (r) => (r.assessment
      ? el("span", { class: "badge badge-" + assessmentTone(r.assessment), text: tOr("fill.assessment." + r.assessment, r.assessment) })
      : "—") },
    { label: "fills.col.checks", render: checksCell, sort: (r) => (r.failed_checks || []).length },
    { label: "fill.company", render: (r) => text(r.company_name) },
    { label: "fill.operator", render: (r) => text(r.operator) },
  ],
});

function refresh() {
  exportLinks();
  loadSummary();
}
form.addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
form.addEventListener("reset", () => setTimeout(refresh, 0));
refresh();
