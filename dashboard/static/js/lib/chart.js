// @ts-check
/* A thin helper over the vendored ECharts (global `echarts`, /static/vendor/echarts):
   create a chart in a theme, resize every chart when the window does, dispose one. The
   themes hold the colours a chart needs beyond its data, so a page never repeats them:
   "dark" for the command-centre wall, "light" for the regulator pages' reports. */

/**
 * @typedef {object} ChartTheme
 * @property {string[]} palette series colours
 * @property {string} text axis labels and legends
 * @property {string} strong labels that must stand out (values on bars)
 * @property {string} muted the "no data" notice
 * @property {string} axis axis lines
 * @property {string} grid split lines
 * @property {string} background what borders between slices are drawn in
 */

/** @type {Record<"dark" | "light", ChartTheme>} */
export const THEMES = {
  dark: {
    palette: ["#22d3ee", "#fbbf24", "#f87171", "#a78bfa", "#34d399", "#60a5fa", "#fb923c"],
    text: "#93c5fd",
    strong: "#fde68a",
    muted: "#64748b",
    axis: "rgba(125,211,252,0.35)",
    grid: "rgba(56,189,248,0.10)",
    background: "#030b1a",
  },
  light: {
    palette: ["#1d4ed8", "#eab308", "#dc2626", "#7c3aed", "#16a34a", "#0d9488", "#f97316"],
    text: "#334155",
    strong: "#0f172a",
    muted: "#94a3b8",
    axis: "#cbd5e1",
    grid: "#e2e8f0",
    background: "#ffffff",
  },
};

const RESIZE_DEBOUNCE_MS = 200;

/** @type {Set<any>} */
const live = new Set();
/** @type {Set<() => void>} */
const afterResize = new Set();
/** @type {ReturnType<typeof setTimeout> | null} */
let resizeTimer = null;

window.addEventListener("resize", () => {
  if (resizeTimer) clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const chart of live) chart.resize();
    for (const fn of afterResize) fn();
  }, RESIZE_DEBOUNCE_MS);
});

/**
 * A chart in *node*, resized with the window until disposed.
 * @param {HTMLElement} node
 * @returns {any} the ECharts instance
 */
export function createChart(node) {
  const chart = echarts.init(node, null, { renderer: "canvas" });
  live.add(chart);
  return chart;
}

/** @param {any} chart */
export function disposeChart(chart) {
  live.delete(chart);
  chart.dispose();
}

/**
 * Run *fn* after the charts have been resized (e.g. redraw with sizes in rem).
 * @param {() => void} fn
 */
export function onResize(fn) {
  afterResize.add(fn);
}

/**
 * Axis styling in a theme, with font sizes relative to *rem* pixels.
 * @param {ChartTheme} theme
 * @param {number} rem
 */
export function axisStyle(theme, rem) {
  return {
    axisLine: { lineStyle: { color: theme.axis } },
    axisTick: { show: false },
    axisLabel: { color: theme.text, fontSize: 0.78 * rem },
    splitLine: { lineStyle: { color: theme.grid } },
  };
}

/**
 * A centred "no data" notice when *isEmpty*, for a chart's `graphic` option.
 * @param {ChartTheme} theme
 * @param {number} rem
 * @param {boolean} isEmpty
 * @param {string} label
 */
export function emptyGraphic(theme, rem, isEmpty, label) {
  return isEmpty ? [{ type: "text", left: "center", top: "middle", style: { text: label, fill: theme.muted, fontSize: 0.95 * rem } }] : [];
}

/** The root font size in pixels (the wall scales with the screen through it). */
export function rem() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}
