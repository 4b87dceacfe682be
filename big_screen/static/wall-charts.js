// @ts-check
/* The wall's chart windows: its own four charts (from the chart feed in wall-store.js) and
   any report of the catalogue (GET /api/v1/reports/{name}), as its chart or its table.

   A report window reads its report when mounted and every report_refresh_s, with its
   filters and the period of its last `days` city days; the chart is drawn by the platform's
   report chart module (lib/report-chart.js, the report pages draw the same) from the
   catalogue's chart spec, or — a report the catalogue gives no spec — as bars of its
   measures by its first column. A report that fails says so in its window and is tried
   again at the next refresh; the rest of the wall goes on. */
import { THEMES, axisStyle, createChart, disposeChart, emptyGraphic, rem } from "/static/js/lib/chart.js";
import { config } from "/static/js/lib/config.js";
import { el } from "/static/js/lib/dom.js";
import { lang, t } from "/static/js/lib/i18n.js";
import { columnLabel, formatValue, needsDistricts, reportChartOption } from "/static/js/lib/report-chart.js";
import { on, store } from "./wall-store.js";

const W = config.wall;
const THEME = THEMES.dark;
const DAY_MS = 86400000;
const TABLE_ROWS_MAX = 200;
const MEASURES = new Set(["count", "number", "kg", "rate"]);
export const CHART_IDS = /** @type {Record<string, string>} */ ({
  fills_per_hour: "chart-fills", denials_by_reason: "chart-denials",
  inspection_by_district: "chart-districts", companies_by_anomalies: "chart-companies",
});

/** @param {number} r @param {number} [left] */
const grid = (r, left = 2.6) => ({ left: left * r, right: 1 * r, top: 1.8 * r, bottom: 1.6 * r });
const HOURS = Array.from({ length: 24 }, (_, h) => (h < 10 ? "0" : "") + h);

/** @type {Record<string, (d: any, r: number) => any>} one ECharts option per chart of the feed */
const OPTIONS = {
  fills_per_hour: (d, r) => ({
    animationDuration: 600,
    grid: grid(r),
    tooltip: { show: false },
    xAxis: { type: "category", data: HOURS, boundaryGap: true, ...axisStyle(THEME, r), splitLine: { show: false } },
    yAxis: { type: "value", minInterval: 1, ...axisStyle(THEME, r) },
    series: [{
      type: "bar", name: t("series.fills"), data: d.fills_per_hour, barWidth: "55%",
      itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [
        { offset: 0, color: "#67e8f9" }, { offset: 1, color: "rgba(14,116,144,0.25)" }]) },
    }, {
      type: "line", data: d.fills_per_hour, smooth: true, symbol: "none",
      lineStyle: { color: THEME.palette[1], width: 0.12 * r },
    }],
  }),
  denials_by_reason: (d, r) => {
    const denials = d.denials_by_reason.map((/** @type {any} */ x) => ({ name: t("reason." + x.reason), value: x.count }));
    return {
      color: THEME.palette,
      graphic: emptyGraphic(THEME, r, denials.length === 0, t("empty")),
      legend: { orient: "vertical", right: 0.2 * r, top: "middle", itemWidth: 0.7 * r, itemHeight: 0.7 * r,
        textStyle: { color: "#bfdbfe", fontSize: 0.8 * r } },
      series: [{
        type: "pie", radius: ["38%", "70%"], center: ["32%", "52%"], roseType: "radius",
        itemStyle: { borderColor: THEME.background, borderWidth: 0.12 * r },
        label: { color: "#e0f2fe", fontSize: 0.78 * r, formatter: "{c}" },
        labelLine: { length: 0.4 * r, length2: 0.4 * r },
        data: denials,
      }],
    };
  },
  inspection_by_district: (d, r) => {
    const dn = d.inspection_by_district;
    return {
      color: [THEME.palette[1], THEME.palette[2]],
      graphic: emptyGraphic(THEME, r, dn.length === 0, t("empty")),
      legend: { top: 0, right: 0, itemWidth: 0.8 * r, itemHeight: 0.55 * r, textStyle: { color: "#bfdbfe", fontSize: 0.78 * r } },
      grid: grid(r),
      xAxis: { type: "category", data: dn.map((/** @type {any} */ x) => {
        const n = lang === "en" && x.name_en ? x.name_en : x.name || x.district;
        return n.length > 5 ? n.slice(0, 4) + "…" : n;
      }), ...axisStyle(THEME, r), splitLine: { show: false } },
      yAxis: { type: "value", minInterval: 1, ...axisStyle(THEME, r) },
      series: [
        { type: "bar", name: t("series.inspection_due"), data: dn.map((/** @type {any} */ x) => x.inspection_due), barGap: "10%" },
        { type: "bar", name: t("series.overdue"), data: dn.map((/** @type {any} */ x) => x.overdue) },
      ],
    };
  },
  companies_by_anomalies: (d, r) => {
    const comp = d.companies_by_anomalies.slice().reverse();
    const ax = axisStyle(THEME, r);
    return {
      graphic: emptyGraphic(THEME, r, comp.length === 0, t("empty")),
      grid: { left: 0.5 * r, right: 2.8 * r, top: 0.4 * r, bottom: 0.4 * r, containLabel: true },
      xAxis: { type: "value", minInterval: 1, ...ax, axisLabel: { show: false } },
      yAxis: { type: "category", data: comp.map((/** @type {any} */ x) => x.name), ...ax,
        axisLabel: { color: "#dbeafe", fontSize: 0.8 * r, width: 11 * r, overflow: "truncate" } },
      series: [{
        type: "bar", name: t("series.anomalies"), data: comp.map((/** @type {any} */ x) => x.count), barWidth: "52%",
        label: { show: true, position: "right", color: THEME.strong, fontSize: 0.8 * r },
        itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 1, 0, [
          { offset: 0, color: "rgba(248,113,113,0.25)" }, { offset: 1, color: THEME.palette[2] }]) },
      }],
    };
  },
};

/** The default title of a chart window (the ranking's names its period). @param {string} chart */
export function chartTitle(chart) {
  return t("panel." + chart, { days: W.ranking_days });
}

/**
 * One of the wall's own charts.
 * @param {HTMLElement} body
 * @param {{primary: boolean, chart: string}} opts
 */
export function chartWindow(body, opts) {
  const node = el("div", { class: "bs-chart" });
  if (opts.primary && CHART_IDS[opts.chart]) node.id = CHART_IDS[opts.chart];
  body.appendChild(node);
  const chart = createChart(node);
  const draw = () => {
    if (store.charts) chart.setOption(OPTIONS[opts.chart](store.charts, rem()), true);
  };
  draw();
  const stop = on("charts", draw);
  return {
    resize() { chart.resize(); draw(); },
    destroy() { stop(); disposeChart(chart); },
  };
}

// ---------------------------------------------------------------- reports

/** @type {Promise<Map<string, any>> | null} */
let catalogue = null;

/** @param {(path: string, query?: any) => Promise<any>} feed */
function reportCatalogue(feed) {
  if (!catalogue) {
    catalogue = feed("/api/v1/reports").then((body) => new Map((body.items || []).map((/** @type {any} */ r) => [r.name, r])));
    catalogue.catch(() => { catalogue = null; });
  }
  return catalogue;
}

/** A city day N days back, as YYYY-MM-DD. @param {number} back */
function cityDay(back) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(Date.now() - back * DAY_MS));
  return parts.slice(0, 10);
}

/**
 * The report's {columns, rows}: a framed report has them; an older report's JSON is read
 * as its first list of objects, its columns guessed from the first row.
 * @param {any} body
 */
export function tabular(body) {
  if (body && Array.isArray(body.columns) && Array.isArray(body.rows)) return { columns: body.columns, rows: body.rows, totals: body.totals || null };
  const rows = Object.values(body || {}).find((v) => Array.isArray(v) && v.length && typeof v[0] === "object") || [];
  const first = rows[0] || {};
  const columns = Object.keys(first).map((key) => ({
    key, label: key, label_en: key, type: typeof first[key] === "number" ? "count" : "text",
  }));
  return { columns, rows, totals: null };
}

/** A spec for a report without one: bars of its measures by its first other column. @param {any[]} columns */
function fallbackSpec(columns) {
  const x = columns.find((c) => !MEASURES.has(c.type)) || columns[0];
  const series = columns.filter((c) => MEASURES.has(c.type)).map((c) => c.key);
  return x ? { kind: "bar", x: x.key, series, y: null } : null;
}

/**
 * @param {HTMLElement} body
 * @param {any[]} columns
 * @param {any[]} rows
 * @param {any} totals
 */
function drawTable(body, columns, rows, totals) {
  const head = el("tr", {}, ...columns.map((c) => el("th", { class: MEASURES.has(c.type) ? "num" : "", text: columnLabel(c, lang) })));
  const line = (/** @type {any} */ r, /** @type {string} */ cls) => el("tr", { class: cls },
    ...columns.map((c) => el("td", { class: MEASURES.has(c.type) ? "num" : "", text: r[c.key] === undefined && cls ? "" : formatValue(c.type, r[c.key], lang) })));
  const tbody = el("tbody", {}, ...rows.slice(0, TABLE_ROWS_MAX).map((r) => line(r, "")));
  const foot = totals ? el("tfoot", {}, line(totals, "total")) : null;
  body.replaceChildren(el("div", { class: "bs-table-wrap" }, el("table", { class: "bs-table" }, el("thead", {}, head), tbody, foot)));
}

/**
 * A report window (see the module docstring).
 * @param {HTMLElement} body
 * @param {{win: any, feed: (path: string, query?: any) => Promise<any>, title: HTMLElement | null}} opts
 */
export function reportWindow(body, opts) {
  const win = opts.win;
  /** @type {any} */
  let chart = null;
  /** @type {any} */
  let last = null;
  let alive = true;

  function draw() {
    if (!last) return;
    const { columns, rows, totals, spec } = last;
    if (win.view === "table" || !spec) {
      drawTable(body, columns, rows, totals);
      return;
    }
    if (!chart) {
      body.replaceChildren();
      chart = createChart(body.appendChild(el("div", { class: "bs-chart" })));
    }
    chart.setOption(reportChartOption(columns, rows, spec, { lang, theme: THEME, rem: rem(), geo: store.districts, emptyLabel: t("empty") }), true);
  }

  async function load() {
    try {
      const entry = (await reportCatalogue(opts.feed)).get(win.report);
      if (opts.title && !win.title && entry) opts.title.textContent = (lang === "en" ? entry.title_en || entry.summary : entry.title) || entry.summary || win.report;
      /** @type {Record<string, string>} */
      const query = { ...(win.filters || {}) };
      if (win.days) { query.from = cityDay(win.days - 1); query.to = cityDay(0); }
      const data = tabular(await opts.feed("/api/v1/reports/" + encodeURIComponent(win.report), query));
      if (!alive) return;
      const spec = (entry && entry.chart) || fallbackSpec(data.columns);
      last = { ...data, spec };
      body.dataset.state = "ready";
      draw();
    } catch (err) {
      if (!alive) return;
      if (chart) { disposeChart(chart); chart = null; }
      body.dataset.state = "error";
      body.replaceChildren(el("p", { class: "bs-win-error", text: t("report.failed") + (err instanceof Error && err.message ? " — " + err.message : "") }));
    }
  }
  load();
  const timer = setInterval(load, W.report_refresh_s * 1000);
  const stop = on("districts", () => { if (last && needsDistricts(last.spec)) draw(); });
  return {
    resize() { if (chart) { chart.resize(); draw(); } },
    destroy() {
      alive = false;
      clearInterval(timer);
      stop();
      if (chart) disposeChart(chart);
    },
  };
}
