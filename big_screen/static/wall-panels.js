// @ts-check
/* The wall's text windows: KPI tiles and the alert ticker (from wall-store.js).

   KPI tiles fill their window: as many columns as keep each tile about as wide as a tile
   reads best (TILE_ASPECT), recomputed when the window changes size. The ticker shows the
   newest unresolved alerts on top, at most ticker_max rows, and replaces a row in place
   when the same alert comes again (count, acknowledgement) or removes it once resolved. */
import { config } from "/static/js/lib/config.js";
import { el } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { lang, t } from "/static/js/lib/i18n.js";
import { on, store } from "./wall-store.js";

const W = config.wall;
const TILE_ASPECT = 2.6;
const TONES = /** @type {Record<string, string>} */ ({
  inspection_due: "warn", overdue: "bad", scrapped: "dim", fills_today: "good", denials_today: "warn", open_alerts: "bad",
});
const numFmt = new Intl.NumberFormat(lang);
export const fmtTime = cityFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit" });

/**
 * @param {HTMLElement} body
 * @param {{primary: boolean, keys: string[]}} opts
 */
export function kpiWindow(body, opts) {
  const grid = el("div", { class: "bs-kpis" });
  if (opts.primary) grid.id = "kpis";
  /** @type {Map<string, {tile: HTMLElement, value: HTMLElement}>} */
  const tiles = new Map();
  for (const k of opts.keys) {
    const value = el("b", { text: store.kpis[k] === undefined ? "–" : numFmt.format(store.kpis[k]) });
    const tile = el("div", { class: "bs-kpi" + (TONES[k] ? " " + TONES[k] : ""), dataset: { kpi: k } }, el("span", { text: t("kpi." + k) }), value);
    tiles.set(k, { tile, value });
    grid.appendChild(tile);
  }
  body.appendChild(grid);
  function fit() {
    const n = tiles.size;
    const w = body.clientWidth || 1;
    const h = body.clientHeight || 1;
    let best = 1;
    let score = Infinity;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const s = Math.abs(Math.log((w / cols) / (h / rows) / TILE_ASPECT));
      if (s < score) { score = s; best = cols; }
    }
    grid.style.gridTemplateColumns = "repeat(" + best + ", minmax(0, 1fr))";
    grid.style.gridTemplateRows = "repeat(" + Math.ceil(n / best) + ", minmax(0, 1fr))";
  }
  fit();
  const stop = on("kpi", (/** @type {string} */ k, /** @type {number} */ v, /** @type {boolean} */ had) => {
    const tile = tiles.get(k);
    if (!tile) return;
    tile.value.textContent = numFmt.format(v);
    if (had) {
      tile.tile.classList.remove("flash");
      void tile.tile.offsetWidth; // restart the animation
      tile.tile.classList.add("flash");
    }
  });
  return { resize: fit, destroy: stop };
}

/** @param {any} a */
function alertTime(a) {
  const raw = a.last_at || a.first_at || a.ts;
  const d = raw ? new Date(typeof raw === "number" ? raw : String(raw)) : new Date();
  return isNaN(d.getTime()) ? new Date() : d;
}

/**
 * @param {HTMLElement} body
 * @param {{primary: boolean}} opts
 */
export function tickerWindow(body, opts) {
  const list = el("ol", { class: "bs-ticker", "aria-live": "polite" });
  if (opts.primary) list.id = "ticker";
  body.appendChild(list);
  /** @type {Map<string, HTMLElement>} */
  const rows = new Map();
  /** @type {HTMLElement | null} */
  let empty = null;
  function showEmpty() {
    if (list.children.length === 0) {
      empty = el("li", { class: "t-empty", text: t("no_alerts") });
      list.appendChild(empty);
    }
  }
  /** @param {any} a */
  function push(a) {
    const id = a.id !== undefined && a.id !== null ? String(a.id) : null;
    if (empty) { empty.remove(); empty = null; }
    const old = id ? rows.get(id) : null;
    if (id && old) { old.remove(); rows.delete(id); }
    if (a.state === "resolved") { showEmpty(); return; }
    const sev = a.severity || "warning";
    const where = [store.districtNames.get(a.district || a.district_code) || a.district || a.district_code || "",
      a.company_name || "", a.subject_id ? String(a.subject_id) : ""].filter(Boolean).join(" · ");
    const li = el("li", { class: "sev-" + sev, dataset: id ? { id } : {} },
      el("span", { class: "t-sev", text: t("severity." + sev) }),
      el("span", { class: "t-kind", text: t("kind." + a.kind) }, a.count > 1 ? el("span", { class: "t-count", text: "×" + a.count }) : null),
      el("span", { class: "t-time", text: fmtTime.format(alertTime(a)) }),
      el("span", { class: "t-where", text: where }));
    list.insertBefore(li, list.firstChild);
    if (id) rows.set(id, li);
    while (list.children.length > W.ticker_max) {
      const last = /** @type {HTMLElement} */ (list.lastElementChild);
      if (last.dataset.id) rows.delete(last.dataset.id);
      last.remove();
    }
  }
  store.alerts.forEach((a) => push(a)); // oldest first: the newest ends on top
  showEmpty();
  const stop = on("alert", push);
  return {
    list,
    rows,
    showEmpty,
    resize() {},
    destroy: stop,
  };
}
