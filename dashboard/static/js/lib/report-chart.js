// @ts-check
/* The chart of a framed report (docs/API.md "Reports", the report frame): from the report's
   {columns, rows} and the catalogue's chart spec {kind, x, series, y}, an ECharts option —
   trend lines per bucket (one line per company when `y` names a split column), bars, stacked
   bars, a choropleth of the city's districts, a heat table (site × day) or a pie.

   Free of page state: the caller hands over the ECharts instance, the data, the language,
   the theme and (for a choropleth) the districts' GeoJSON, so the report pages and the wall
   draw a report the same way. Values arrive as JSON numbers or decimal strings (numeric
   sums), and are read with Number(). */
import { THEMES, axisStyle, emptyGraphic, rem as rootRem } from "./chart.js";
import { lang as pageLang, tOr } from "./i18n.js";

/**
 * @typedef {{key: string, label: string, label_en: string, type: string, drill?: string | null}} ReportColumn
 * @typedef {{kind: string, x: string, series: string[], y?: string | null}} ChartSpec
 * @typedef {object} DrawOptions
 * @property {string} [lang] "zh-CN" or "en" (the page's)
 * @property {import("./chart.js").ChartTheme} [theme] (THEMES.light)
 * @property {number} [rem] root font size in pixels
 * @property {any} [geo] the districts' FeatureCollection (properties code, name, name_en)
 * @property {string} [emptyLabel] the "no data" notice
 * @property {{from?: string | null, to?: string | null, group?: string | null}} [period] the
 *   report's period and bucket (its JSON's from, to, group): a trend shows every bucket of
 *   it, the empty ones at zero
 */

/** Types whose values are summed when several rows share a category. */
const MEASURES = new Set(["count", "number", "kg", "rate"]);
/** Above this many categories, a bar chart gets a zoom slider instead of unreadable labels. */
const BAR_ZOOM_AFTER = 24;
/** Lines drawn when a trend is split per company; the rest is summed as one "other" line
    (a chart of sixty lines is no chart). */
const SPLIT_LINES_MAX = 8;
/** The most buckets a trend's axis is filled with (a decade of days); past it, only the
    buckets that have rows are drawn. */
const BUCKETS_MAX = 3660;
/** The map name the districts' GeoJSON is registered under (one city per platform). */
const MAP_NAME = "cylwatch-districts";
let registered = /** @type {any} */ (null);

/**
 * A column's label in *lang*.
 * @param {ReportColumn} col
 * @param {string} [lang]
 */
export function columnLabel(col, lang = pageLang) {
  return (lang === "en" ? col.label_en : col.label) || col.label || col.key;
}

/** @param {unknown} v */
function num(v) {
  if (v === null || v === undefined || v === "") return null;
  const x = Number(v);
  return isNaN(x) ? null : x;
}

/**
 * A value as people read it: counts whole, masses and numbers with decimals, rates in per
 * cent (the frame's rates are fractions, passed / counted).
 * @param {string} type a column type of the frame
 * @param {unknown} v
 * @param {string} [lang]
 */
export function formatValue(type, v, lang = pageLang) {
  if (v === null || v === undefined || v === "") return "—";
  const locale = lang === "en" ? "en-US" : "zh-CN";
  const x = num(v);
  if (type === "count" && x !== null) return x.toLocaleString(locale, { maximumFractionDigits: 0 });
  if ((type === "number" || type === "kg") && x !== null) return x.toLocaleString(locale, { maximumFractionDigits: 2 });
  if (type === "rate" && x !== null) return (x * 100).toLocaleString(locale, { maximumFractionDigits: 1 }) + "%";
  if (type === "date") {
    const s = String(v);
    return s.length > 10 && s.includes("T") ? s.slice(0, 16).replace("T", " ") : s.slice(0, 10);
  }
  return String(v);
}

/**
 * Register the districts' GeoJSON with ECharts (once; again when another is given).
 * @param {any} geo
 */
export function registerDistricts(geo) {
  if (geo && registered !== geo) {
    echarts.registerMap(MAP_NAME, geo);
    registered = geo;
  }
  return MAP_NAME;
}

/**
 * Rows summed per category of *keyOf* (rates averaged), in first-seen order.
 * @param {any[]} rows
 * @param {(row: any) => string} keyOf
 * @param {ReportColumn[]} cols
 * @returns {Map<string, Record<string, number | null>>}
 */
function aggregate(rows, keyOf, cols) {
  /** @type {Map<string, {sum: Record<string, number>, n: Record<string, number>}>} */
  const acc = new Map();
  for (const r of rows) {
    const k = keyOf(r);
    let a = acc.get(k);
    if (!a) {
      a = { sum: {}, n: {} };
      acc.set(k, a);
    }
    for (const c of cols) {
      const x = num(r[c.key]);
      if (x === null) continue;
      a.sum[c.key] = (a.sum[c.key] || 0) + x;
      a.n[c.key] = (a.n[c.key] || 0) + 1;
    }
  }
  /** @type {Map<string, Record<string, number | null>>} */
  const out = new Map();
  for (const [k, a] of acc) {
    /** @type {Record<string, number | null>} */
    const v = {};
    for (const c of cols) {
      const n = a.n[c.key] || 0;
      v[c.key] = n ? (c.type === "rate" ? a.sum[c.key] / n : a.sum[c.key]) : null;
    }
    out.set(k, v);
  }
  return out;
}

/**
 * Every bucket start of [from, to] as PostgreSQL's date_trunc names them (weeks from
 * Monday), "YYYY-MM-DD"; null when the period is unknown or too long.
 * @param {{from?: string | null, to?: string | null, group?: string | null} | undefined} period
 * @returns {string[] | null}
 */
export function bucketsOf(period) {
  if (!period || !period.from || !period.to) return null;
  const group = period.group || "day";
  const d = new Date(period.from + "T00:00:00Z");
  const end = new Date(period.to + "T00:00:00Z");
  if (isNaN(d.getTime()) || isNaN(end.getTime())) return null;
  if (group === "week") d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  else if (group === "month") d.setUTCDate(1);
  else if (group === "quarter") d.setUTCMonth(Math.floor(d.getUTCMonth() / 3) * 3, 1);
  else if (group === "year") d.setUTCMonth(0, 1);
  const out = [];
  while (d <= end) {
    if (out.length >= BUCKETS_MAX) return null;
    out.push(d.toISOString().slice(0, 10));
    if (group === "week") d.setUTCDate(d.getUTCDate() + 7);
    else if (group === "month") d.setUTCMonth(d.getUTCMonth() + 1);
    else if (group === "quarter") d.setUTCMonth(d.getUTCMonth() + 3);
    else if (group === "year") d.setUTCFullYear(d.getUTCFullYear() + 1);
    else d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

/**
 * A trend's categories: every bucket of the period when the x column is a date, plus any
 * row's value outside it, in order.
 * @param {any[]} rows
 * @param {ChartSpec} spec
 * @param {ReportColumn | undefined} xCol
 * @param {DrawOptions} opts
 */
function timeAxis(rows, spec, xCol, opts) {
  const seen = new Set(rows.map((r) => category(r[spec.x])));
  const all = xCol && xCol.type === "date" ? bucketsOf(opts.period) : null;
  if (all) for (const b of all) seen.add(b);
  return [...seen].sort();
}

/**
 * A tooltip drawn on the canvas (ECharts' richText mode), never as HTML: company, site and
 * district names come from people the platform does not control, and a formatter's string
 * would otherwise be parsed as markup.
 * @param {Record<string, unknown>} options
 */
function tip(options) {
  return { renderMode: "richText", confine: true, ...options };
}

/** @param {unknown} v */
function category(v) {
  return v === null || v === undefined || v === "" ? "—" : String(v);
}

/**
 * District names by code from the GeoJSON, in *lang*.
 * @param {any} geo
 * @param {string} lang
 */
function districtNames(geo, lang) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const f of (geo && geo.features) || []) {
    const p = f.properties || {};
    out[p.code] = (lang === "en" && p.name_en) || p.name || p.code;
  }
  return out;
}

/**
 * The ECharts option of a report's chart.
 * @param {ReportColumn[]} columns
 * @param {any[]} rows
 * @param {ChartSpec} spec
 * @param {DrawOptions} [opts]
 */
export function reportChartOption(columns, rows, spec, opts = {}) {
  const lang = opts.lang || pageLang;
  const theme = opts.theme || THEMES.light;
  const rem = opts.rem || rootRem();
  const byKey = new Map(columns.map((c) => [c.key, c]));
  const series = spec.series.map((k) => byKey.get(k)).filter((c) => c && MEASURES.has(c.type));
  const cols = /** @type {ReportColumn[]} */ (series);
  const empty = !rows.length || !cols.length;
  const label = (/** @type {ReportColumn} */ c) => columnLabel(c, lang);
  const fmt = (/** @type {ReportColumn} */ c) => (/** @type {unknown} */ v) => formatValue(c.type, v, lang);
  const base = {
    color: theme.palette,
    textStyle: { color: theme.text, fontSize: 0.8 * rem },
    animation: false,
    graphic: emptyGraphic(theme, rem, empty, opts.emptyLabel || tOr("common.empty", "—")),
  };
  if (empty) return { ...base, series: [] };
  const names = districtNames(opts.geo, lang);
  const xCol = byKey.get(spec.x);
  const xName = (/** @type {string} */ v) => (xCol && spec.kind !== "line" && names[v] && xCol.type === "code" && /^\d{6}$/.test(v) ? names[v] : v);
  const legend = { show: cols.length > 1, top: 0, textStyle: { color: theme.text, fontSize: 0.8 * rem }, type: "scroll" };
  const grid = { left: 12, right: 24, top: cols.length > 1 ? 36 : 16, bottom: 12, containLabel: true };
  const ax = axisStyle(theme, rem);

  if (spec.kind === "pie") {
    const c = cols[0];
    const agg = aggregate(rows, (r) => category(r[spec.x]), [c]);
    return {
      ...base,
      tooltip: tip({ trigger: "item", valueFormatter: fmt(c) }),
      legend: { ...legend, show: agg.size <= 12, type: "scroll", orient: "vertical", left: 0, top: "middle" },
      series: [{
        type: "pie",
        name: label(c),
        radius: ["35%", "68%"],
        center: ["60%", "52%"],
        itemStyle: { borderColor: theme.background, borderWidth: 1 },
        label: { color: theme.text, formatter: "{b}: {d}%" },
        data: [...agg].map(([k, v]) => ({ name: xName(k), value: v[c.key] || 0 })),
      }],
    };
  }

  if (spec.kind === "heat" && spec.y) {
    const c = cols[0];
    const yKey = spec.y;
    const xs = timeAxis(rows, spec, byKey.get(spec.x), opts);
    const agg = aggregate(rows, (r) => category(r[yKey]) + "\u0000" + category(r[spec.x]), [c]);
    const ys = [...new Set(rows.map((r) => category(r[yKey])))];
    let max = 0;
    const cells = [];
    for (const [k, v] of agg) {
      const [y, x] = k.split("\u0000");
      const value = v[c.key] || 0;
      max = Math.max(max, value);
      cells.push([xs.indexOf(x), ys.indexOf(y), value]);
    }
    return {
      ...base,
      tooltip: tip({ position: "top", formatter: (/** @type {any} */ p) => ys[p.value[1]] + " · " + xs[p.value[0]] + ": " + formatValue(c.type, p.value[2], lang) }),
      grid: { ...grid, top: 12, bottom: 64 },
      xAxis: { type: "category", data: xs, splitArea: { show: true }, ...ax },
      yAxis: { type: "category", data: ys, splitArea: { show: true }, ...ax },
      visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0, textStyle: { color: theme.text }, inRange: { color: ["#f8fafc", theme.palette[1], theme.palette[2]] } },
      series: [{ type: "heatmap", name: label(c), data: cells, label: { show: xs.length * ys.length <= 120, color: theme.strong, formatter: (/** @type {any} */ p) => formatValue(c.type, p.value[2], lang) } }],
    };
  }

  if (spec.kind === "choropleth" && opts.geo) {
    const map = registerDistricts(opts.geo);
    const agg = aggregate(rows, (r) => category(r[spec.x]), cols);
    let max = 0;
    for (const v of agg.values()) for (const c of cols) max = Math.max(max, v[c.key] || 0);
    return {
      ...base,
      tooltip: tip({ trigger: "item", formatter: (/** @type {any} */ p) => (names[p.name] || p.name) + (p.seriesName ? " · " + p.seriesName : "") + ": " + formatValue(cols[p.seriesIndex || 0].type, p.value, lang) }),
      legend: { ...legend, selectedMode: "single" },
      visualMap: { min: 0, max: max || 1, calculable: true, left: 8, bottom: 8, textStyle: { color: theme.text }, inRange: { color: ["#e0ecff", theme.palette[0]] } },
      series: cols.map((c) => ({
        type: "map",
        map,
        name: label(c),
        nameProperty: "code",
        roam: false,
        top: cols.length > 1 ? 40 : 16,
        bottom: 16,
        label: { show: true, color: theme.strong, fontSize: 0.72 * rem, formatter: (/** @type {any} */ p) => names[p.name] || p.name },
        emphasis: { label: { show: true } },
        itemStyle: { borderColor: theme.background, areaColor: theme.grid },
        data: [...agg].map(([k, v]) => ({ name: k, value: v[c.key] || 0 })),
      })),
    };
  }

  if (spec.kind === "line") {
    const xs = timeAxis(rows, spec, xCol, opts);
    /** @type {any[]} */
    let lines;
    if (spec.y) {
      lines = split(rows, spec, cols[0], xs, lang).map((g) => ({ type: "line", showSymbol: xs.length <= 40, ...g }));
    } else {
      const agg = aggregate(rows, (r) => category(r[spec.x]), cols);
      lines = cols.map((c) => ({
        type: "line",
        name: label(c),
        showSymbol: xs.length <= 40,
        data: xs.map((x) => { const v = agg.get(x); return v ? v[c.key] : c.type === "rate" ? null : 0; }),
      }));
    }
    const c0 = cols[0];
    return {
      ...base,
      tooltip: tip({ trigger: "axis", valueFormatter: fmt(c0) }),
      legend: { ...legend, show: lines.length > 1 },
      grid: { ...grid, top: lines.length > 1 ? 36 : 16 },
      xAxis: { type: "category", data: xs, boundaryGap: false, ...ax },
      yAxis: { type: "value", minInterval: c0.type === "count" ? 1 : undefined, ...ax, axisLabel: { ...ax.axisLabel, formatter: fmt(c0) } },
      series: lines,
    };
  }

  // bar and stacked_bar (and a choropleth without its shapes: the same numbers as bars);
  // with `y`, one bar (or one part of the stack) per value of y
  const agg = aggregate(rows, (r) => category(r[spec.x]), cols);
  // days and months in order; companies as the report ranks them
  const ordinal = (xCol && xCol.type === "date") || !!spec.y;
  const xs = ordinal ? [...agg.keys()].sort() : [...agg.keys()];
  const stacked = spec.kind === "stacked_bar";
  const zoom = xs.length > BAR_ZOOM_AFTER;
  const bars = spec.y
    ? split(rows, spec, cols[0], xs, lang)
    : cols.map((c) => ({ name: label(c), data: xs.map((x) => { const v = agg.get(x); return v ? v[c.key] : null; }) }));
  return {
    ...base,
    tooltip: tip({ trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: fmt(cols[0]) }),
    legend: { ...legend, show: bars.length > 1 },
    grid: { ...grid, top: bars.length > 1 ? 36 : 16, bottom: zoom ? 40 : 12 },
    xAxis: { type: "category", data: xs.map(xName), ...ax, axisLabel: { ...ax.axisLabel, rotate: xs.length > 6 ? 30 : 0, hideOverlap: true } },
    yAxis: { type: "value", minInterval: cols[0].type === "count" ? 1 : undefined, ...ax, axisLabel: { ...ax.axisLabel, formatter: fmt(cols[0]) } },
    dataZoom: zoom ? [{ type: "slider", bottom: 8, height: 16, startValue: 0, endValue: BAR_ZOOM_AFTER - 1 }, { type: "inside" }] : [],
    series: bars.map((b) => ({ type: "bar", stack: stacked ? "total" : undefined, barMaxWidth: 48, ...b })),
  };
}

/**
 * One series per value of the spec's `y` column (a company…), the largest first; past
 * SPLIT_LINES_MAX the rest summed as "other".
 * @param {any[]} rows
 * @param {ChartSpec} spec
 * @param {ReportColumn} c the plotted column
 * @param {string[]} xs the categories
 * @param {string} lang
 * @returns {{name: string, data: (number | null)[]}[]}
 */
function split(rows, spec, c, xs, lang) {
  const yKey = /** @type {string} */ (spec.y);
  const totals = aggregate(rows, (r) => category(r[yKey]), [c]);
  const ranked = [...totals].sort((a, b) => (b[1][c.key] || 0) - (a[1][c.key] || 0)).map(([k]) => k);
  const shown = new Set(ranked.slice(0, SPLIT_LINES_MAX));
  const other = tOr("reports.chart.other", lang === "en" ? "Other" : "其他");
  const cell = aggregate(rows, (r) => (shown.has(category(r[yKey])) ? category(r[yKey]) : other) + "\u0000" + category(r[spec.x]), [c]);
  const groups = [...ranked.slice(0, SPLIT_LINES_MAX), ...(ranked.length > SPLIT_LINES_MAX ? [other] : [])];
  return groups.map((g) => ({
    name: g,
    data: xs.map((x) => { const v = cell.get(g + "\u0000" + x); return v ? v[c.key] : c.type === "rate" ? null : 0; }),
  }));
}

/**
 * Draw a report's chart on an ECharts instance (replacing what it showed).
 * @param {any} instance from lib/chart.js createChart
 * @param {{columns: ReportColumn[], rows: any[]}} report the report's JSON body
 * @param {ChartSpec} spec the catalogue's chart
 * @param {DrawOptions} [opts]
 */
export function drawReportChart(instance, report, spec, opts = {}) {
  const option = reportChartOption(report.columns || [], report.rows || [], spec, opts);
  instance.setOption(option, true);
  return option;
}

/** Whether a chart of *spec* needs the districts' shapes. @param {ChartSpec | null | undefined} spec */
export function needsDistricts(spec) {
  return !!spec && spec.kind === "choropleth";
}
