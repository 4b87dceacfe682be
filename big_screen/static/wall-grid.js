// @ts-check
/* The wall's grid: a layout (server/domain/wall.py) drawn as CSS grid cells, one panel per
   window at its x, y, w, h, each with the content its kind names. Switching a layout
   destroys every window (maps removed, charts disposed, streams stopped, listeners
   released) and mounts the new ones, which draw the live state at once (wall-store.js).

   The first window of a kind keeps the element ids the wall always had (#map, #ticker,
   #kpis, #chart-fills, ...), so a technician's bookmarks and the tests find them. */
import { el } from "/static/js/lib/dom.js";
import { t } from "/static/js/lib/i18n.js";
import { chartTitle, chartWindow, reportWindow } from "./wall-charts.js";
import { mapWindow } from "./wall-map.js";
import { kpiWindow, tickerWindow } from "./wall-panels.js";
import { streamWindow } from "./wall-stream.js";

const ALL_KPIS = ["registered", "in_service", "inspection_due", "overdue", "scrapped", "fills_today", "denials_today", "open_alerts"];

/** @typedef {{resize: () => void, destroy: () => void}} Mounted */

/**
 * The default title of a window (its own `title` wins).
 * @param {any} win
 */
function defaultTitle(win) {
  switch (win.kind) {
    case "map": return t("panel.map");
    case "ticker": return t("panel.ticker");
    case "kpis": return "";
    case "chart": return chartTitle(win.chart);
    case "report": return win.report;
    case "stream": return t("panel.stream");
    default: return "";
  }
}

/**
 * Draw *layout* into *gridEl*; returns the mounted windows and a destroy function.
 * @param {HTMLElement} gridEl
 * @param {any} layout {columns, rows, windows}
 * @param {{feed: (path: string, query?: any) => Promise<any>}} ctx
 */
export function mountLayout(gridEl, layout, ctx) {
  gridEl.replaceChildren();
  gridEl.style.gridTemplateColumns = "repeat(" + layout.columns + ", minmax(0, 1fr))";
  gridEl.style.gridTemplateRows = "repeat(" + layout.rows + ", minmax(0, 1fr))";
  /** @type {{win: any, panel: HTMLElement, mounted: Mounted | null}[]} */
  const windows = [];
  /** @type {Set<string>} */
  const primaries = new Set();
  /** @param {string} key */
  const primary = (key) => {
    if (primaries.has(key)) return false;
    primaries.add(key);
    return true;
  };
  layout.windows.forEach((/** @type {any} */ win, /** @type {number} */ i) => {
    const title = win.title || defaultTitle(win);
    const heading = title || win.kind !== "kpis" ? el("h2", {}, el("span", { class: "bs-win-title", text: title })) : null;
    const body = el("div", { class: "bs-win-body" });
    const panel = el("section", {
      class: "bs-win " + (win.kind === "kpis" && !heading ? "bs-bare" : "bs-panel") + " bs-win-" + win.kind,
      dataset: { kind: win.kind, win: String(i) },
      "aria-label": title || t("kpi.title"),
    }, heading, body);
    panel.style.gridColumn = win.x + 1 + " / span " + win.w;
    panel.style.gridRow = win.y + 1 + " / span " + win.h;
    gridEl.appendChild(panel);
    windows.push({ win, panel, mounted: null });
  });
  // mount after every panel is placed, so each content measures its final size
  for (const w of windows) {
    const { win, panel } = w;
    const body = /** @type {HTMLElement} */ (panel.querySelector(".bs-win-body"));
    const heading = panel.querySelector("h2");
    try {
      if (win.kind === "map") {
        const legend = heading ? el("span", { class: "bs-legend" }) : null;
        if (heading && legend) heading.appendChild(legend);
        w.mounted = mapWindow(body, { primary: primary("map"), legend });
      } else if (win.kind === "kpis") {
        w.mounted = kpiWindow(body, { primary: primary("kpis"), keys: win.keys || ALL_KPIS });
      } else if (win.kind === "ticker") {
        w.mounted = tickerWindow(body, { primary: primary("ticker") });
      } else if (win.kind === "chart") {
        w.mounted = chartWindow(body, { primary: primary("chart:" + win.chart), chart: win.chart });
      } else if (win.kind === "report") {
        w.mounted = reportWindow(body, { win, feed: ctx.feed, title: win.title ? null : /** @type {HTMLElement | null} */ (panel.querySelector(".bs-win-title")) });
      } else if (win.kind === "stream") {
        w.mounted = streamWindow(body, { win });
      }
    } catch (err) {
      body.replaceChildren(el("p", { class: "bs-win-error", text: String(err) }));
    }
  }
  return {
    windows,
    primaryTicker: () => {
      const list = gridEl.querySelector("#ticker");
      return list instanceof HTMLElement ? list : null;
    },
    resize() { for (const w of windows) if (w.mounted) w.mounted.resize(); },
    destroy() {
      for (const w of windows) if (w.mounted) w.mounted.destroy();
      gridEl.replaceChildren();
    },
  };
}
