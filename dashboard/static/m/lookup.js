// @ts-check
/* Scan-to-lookup on the officer's phone (/m, docs/ARCHITECTURE.md §8): a code typed or
   scanned → the cylinder's archive, its last fills, its latest trajectory steps, where it
   is on a small map, and the live stock of the site it is at.

   Everything comes from the REST API the desktop pages use, within the caller's scope:
   - GET /api/v1/cylinders?q= finds the cylinder (exact tag/stamp/barcode preferred);
   - GET /api/v1/cylinders/{id}: the archive; the current place is under `location`
     (kind, site_id, site_name, lat/lon — coordinates only for roles that may read
     positions) and the last fill under `last_fill` (ts, site_name);
   - GET /api/v1/fills?cylinder=: the fills, only for roles that may read fills (for others
     the section is left out: who.js);
   - GET /api/v1/cylinders/{id}/trajectory: oldest first and paged, so the last pages;
   - GET /api/v1/sites/{id}: the site the cylinder is at, with its live stock (stock_full,
     stock_empty: cylinders held there now, as the overstock rule counts them) and the
     storage limit that rule applies (0: none); its coordinates place the marker when the
     cylinder has none of its own.
   window.__m.lookup exposes what was shown (for tests). */
import { api } from "/static/js/lib/api.js";
import { byId, clear, el } from "/static/js/lib/dom.js";
import { cityFormat, number } from "/static/js/lib/format.js";
import { t, tOr } from "/static/js/lib/i18n.js";
import { addBaseLayer, toDisplay } from "/static/js/lib/map.js";
import { Scanner } from "./scan.js";
import { mayRead } from "./who.js";

const LOOKUP_MATCHES = 20;
const FILLS_SHOWN = 5;
const STEPS_SHOWN = 10;
const MAP_ZOOM = 15;

/** What the last lookup showed (tests read it through window.__m.lookup). */
export const shown = {
  /** @type {number | null} */ id: null,
  /** @type {[number, number] | null} */ marker: null,
  /** @type {string | null} */ markerSource: null,
  fills: 0,
  steps: 0,
  /** @type {{full: number, empty: number} | null} */ stock: null,
  done: false,
};

const fmtTime = cityFormat({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
/** @param {unknown} raw */
export function when(raw) {
  if (!raw) return "";
  const d = new Date(/** @type {string} */ (raw));
  return isNaN(d.getTime()) ? String(raw) : fmtTime.format(d);
}

const result = byId("lookup-result");
/** @type {any} */
let map = null;

/**
 * @param {HTMLElement} dl
 * @param {string} key
 * @param {Node | string | null | undefined} value
 */
function field(dl, key, value) {
  if (value === null || value === undefined || value === "") return;
  dl.appendChild(el("dt", { text: t("field." + key) }));
  dl.appendChild(el("dd", {}, value));
}

/**
 * A titled card of the result; its body is filled when its data arrives.
 * @param {string} id
 * @param {string} titleKey
 */
function section(id, titleKey) {
  const body = el("div", { class: "m-muted", text: t("lookup.loading") });
  const card = el("section", { class: "m-card", id }, el("h2", { text: t(titleKey) }), body);
  result.appendChild(card);
  return { card, body };
}

/** @param {any} loc */
function placeText(loc) {
  if (!loc || !loc.kind) return null;
  const bits = [tOr("location." + loc.kind, loc.kind)];
  if (loc.site_name) bits.push(loc.site_name);
  if (loc.device) bits.push(loc.device);
  return bits.join(" · ");
}

/** @param {any} c */
function renderArchive(c) {
  const dl = el("dl", { class: "m-dl" });
  const lf = c.last_fill;
  field(dl, "compliance", el("span", { id: "cylinder-compliance", class: "badge " + c.compliance, text: t("compliance." + c.compliance) }));
  field(dl, "status", tOr("status." + c.status, c.status));
  field(dl, "stamp", c.stamp);
  field(dl, "barcode", c.barcode);
  field(dl, "owner", c.owner_name || c.owner_code);
  field(dl, "spec", c.spec);
  field(dl, "manufacture_date", c.manufacture_date);
  field(dl, "last_inspection_date", c.last_inspection_date);
  field(dl, "next_inspection_date", c.next_inspection_date);
  field(dl, "scrap_date", c.scrap_date);
  field(dl, "fill_state", c.fill_state ? tOr("fill_state." + c.fill_state, c.fill_state) : null);
  field(dl, "last_fill", lf ? el("span", { id: "cylinder-last-fill", text: when(lf.ts) + (lf.site_name ? " · " + lf.site_name : "") }) : null);
  field(dl, "location", el("span", { id: "cylinder-location", text: placeText(c.location) || "—" }));
  field(dl, "district", c.district_code);
  result.appendChild(el("section", { class: "m-card", id: "cylinder-card" },
    el("h2", { class: "m-tag", text: c.tag }), dl,
    el("p", { class: "m-more" }, el("a", { href: "/cylinders/" + c.id, text: t("lookup.full_archive") }))));
}

/** @param {any[]} items */
function renderFills(/** @type {HTMLElement} */ body, items) {
  clear(body).className = "";
  if (!items.length) { body.appendChild(el("p", { class: "m-muted", text: t("fills.empty") })); return; }
  body.appendChild(el("ul", { class: "m-list", id: "fills-list" }, items.map((f) => el("li", {},
    el("b", { text: when(f.ts) }),
    el("span", { text: [f.station_name || f.station_code || f.gun_id, number(f.net_kg) + " kg",
      f.result === "aborted" ? t("fill.aborted") : tOr("assessment." + f.assessment, f.assessment || "")].filter(Boolean).join(" · ") })))));
}

/** @param {any} e */
function stepWhere(e) {
  return e.site_name || e.device_id || "";
}

/** @param {any[]} events newest last */
function renderSteps(/** @type {HTMLElement} */ body, events) {
  clear(body).className = "";
  if (!events.length) { body.appendChild(el("p", { class: "m-muted", text: t("trajectory.empty") })); return; }
  body.appendChild(el("ol", { class: "m-list m-steps", id: "trajectory-list" }, events.slice().reverse().map((e) => el("li", { dataset: { kind: e.kind } },
    el("b", { text: tOr("event." + e.kind, e.kind) }),
    el("span", { text: [when(e.ts), stepWhere(e), e.operator].filter(Boolean).join(" · ") })))));
}

/**
 * Where to put the marker: the cylinder's own position, else the site it is at, else the
 * latest trajectory step that carries coordinates.
 * @param {any} c @param {any} site @param {any[]} events newest last
 * @returns {{lat: number, lon: number, source: string, at: unknown} | null}
 */
function position(c, site, events) {
  const loc = c.location || {};
  if (loc.lat != null && loc.lon != null) return { lat: Number(loc.lat), lon: Number(loc.lon), source: "cylinder", at: loc.seen_at };
  if (loc.kind === "site" && site && site.lat != null && site.lon != null) return { lat: Number(site.lat), lon: Number(site.lon), source: "site", at: null };
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.lat != null && e.lon != null) return { lat: Number(e.lat), lon: Number(e.lon), source: "event", at: e.ts };
  }
  return null;
}

/** @param {HTMLElement} body @param {ReturnType<typeof position>} pos */
function renderMap(body, pos) {
  clear(body).className = "";
  if (!pos) { body.appendChild(el("p", { class: "m-muted", text: t("map.none") })); return; }
  const box = el("div", { class: "m-map", id: "cylinder-map" });
  body.appendChild(box);
  body.appendChild(el("p", { class: "m-muted", id: "cylinder-map-note", text: t("map.source." + pos.source) + (pos.at ? " · " + when(pos.at) : "") }));
  const ll = toDisplay(pos.lat, pos.lon);
  map = L.map(box, { zoomControl: true, attributionControl: false }).setView(ll, MAP_ZOOM);
  addBaseLayer(map);
  L.circleMarker(ll, { radius: 9, color: "#fff", weight: 3, fillColor: "#dc2626", fillOpacity: 1, className: "m-pos-marker" }).addTo(map);
  shown.marker = [pos.lat, pos.lon];
  shown.markerSource = pos.source;
}

/** @param {HTMLElement} body @param {any} site GET /api/v1/sites/{id} */
function renderStock(body, site) {
  clear(body).className = "";
  const dl = el("dl", { class: "m-dl" });
  field(dl, "site", site.name + " (" + site.code + ")");
  field(dl, "site_kind", tOr("site_kind." + site.kind, site.kind));
  const known = typeof site.stock_full === "number";
  const limit = Number(site.storage_limit) || 0; // 0: the site has no storage limit
  const over = known && limit > 0 && site.stock_full > limit;
  if (known) {
    field(dl, "stock_full", el("span", { id: "stock-full", class: over ? "m-over" : "", text: number(site.stock_full, 0) + (limit > 0 ? " / " + number(limit, 0) : "") }));
    field(dl, "stock_empty", el("span", { id: "stock-empty", text: number(site.stock_empty, 0) }));
    shown.stock = { full: site.stock_full, empty: site.stock_empty };
  }
  body.appendChild(dl);
  if (!known) body.appendChild(el("p", { class: "m-muted", text: t("stock.unknown") }));
  else if (over) body.appendChild(el("p", { class: "m-error", text: t("stock.over") }));
}

/** The latest trajectory steps (the endpoint pages oldest first). @param {number} id */
async function latestSteps(id) {
  const path = "/api/v1/cylinders/" + id + "/trajectory";
  const first = await api(path, { query: { page_size: STEPS_SHOWN } });
  if (first.total <= STEPS_SHOWN) return first.items || [];
  const last = Math.ceil(first.total / STEPS_SHOWN);
  const pages = await Promise.all([last - 1, last].map((page) => api(path, { query: { page, page_size: STEPS_SHOWN } })));
  return pages.flatMap((p) => p.items || []).slice(-STEPS_SHOWN);
}

/** @param {HTMLElement} body @param {unknown} err */
function failed(body, err) {
  clear(body).className = "m-error";
  body.textContent = t("lookup.section_failed") + (err instanceof Error && err.message ? " " + err.message : "");
}

function reset() {
  if (map) { map.remove(); map = null; }
  clear(result);
  delete result.dataset.ready;
  Object.assign(shown, { id: null, marker: null, markerSource: null, fills: 0, steps: 0, stock: null, done: false });
}

/** @param {number} id */
async function openCylinder(id) {
  reset();
  const c = await api("/api/v1/cylinders/" + id);
  shown.id = c.id;
  renderArchive(c);
  const loc = c.location || {};
  const fillsBox = section("cylinder-fills", "fills.title");
  const stepsBox = section("cylinder-trajectory", "trajectory.title");
  const mapBox = section("cylinder-position", "map.title");
  const stockBox = loc.kind === "site" && loc.site_id ? section("site-stock", "stock.title") : null;
  // result order on screen: archive, map, stock, fills, trajectory
  result.insertBefore(mapBox.card, fillsBox.card);
  if (stockBox) result.insertBefore(stockBox.card, fillsBox.card);

  if (!mayRead("fills")) fillsBox.card.remove(); // a role that reads no fills
  const fills = !mayRead("fills") ? Promise.resolve() : api("/api/v1/fills", { query: { cylinder: id, page_size: FILLS_SHOWN } }).then((env) => {
    shown.fills = (env.items || []).length;
    renderFills(fillsBox.body, env.items || []);
  }, (err) => failed(fillsBox.body, err));
  const steps = latestSteps(id).then((items) => { shown.steps = items.length; renderSteps(stepsBox.body, items); return items; },
    (err) => { failed(stepsBox.body, err); return []; });
  const site = stockBox ? api("/api/v1/sites/" + loc.site_id).catch(() => null) : Promise.resolve(null);
  const placed = Promise.all([site, steps]).then(([s, items]) => renderMap(mapBox.body, position(c, s, items)));
  const stock = stockBox ? site.then((s) => { if (s) renderStock(stockBox.body, s); else stockBox.card.remove(); }) : Promise.resolve();
  await Promise.all([fills, steps, placed, stock]);
  shown.done = true;
  result.dataset.ready = "1";
}

/** @param {unknown} e */
function lookupFailed(e) {
  const status = /** @type {{status?: number}} */ (e).status;
  result.appendChild(el("p", { class: status === 404 ? "m-empty" : "m-error", text: status === 404 ? t("lookup.not_found") : t("lookup.failed") }));
}

/** @param {string} raw */
export function lookup(raw) {
  const code = raw.trim();
  if (!code) return Promise.resolve();
  reset();
  return api("/api/v1/cylinders", { query: { q: code, page_size: LOOKUP_MATCHES } }).then((b) => {
    let items = b.items || [];
    const exact = items.filter((/** @type {any} */ c) => c.tag === code || c.barcode === code || c.stamp === code);
    if (exact.length === 1) items = exact;
    if (items.length === 0) { result.appendChild(el("p", { class: "m-empty", text: t("lookup.not_found") })); return null; }
    if (items.length === 1) return openCylinder(items[0].id);
    result.appendChild(el("div", { class: "m-card" }, el("h2", { text: t("lookup.many") }),
      items.map((/** @type {any} */ c) => el("button", { class: "m-btn wide", type: "button", onclick: () => openCylinder(c.id).catch(lookupFailed),
        text: c.tag + (c.stamp ? " · " + c.stamp : "") }))));
    return null;
  }).catch(lookupFailed);
}

const lookupCode = /** @type {HTMLInputElement} */ (byId("lookup-code"));
byId("lookup-form").addEventListener("submit", (ev) => { ev.preventDefault(); lookup(lookupCode.value); });

export const scanner = new Scanner(byId("scan-btn"), /** @type {HTMLVideoElement} */ (byId("scan-video")),
  ({ code }) => { lookupCode.value = code; lookup(code); },
  (message) => { clear(result).appendChild(el("p", { class: "m-error", text: message })); });

/** The lookup tab became visible again: Leaflet measures its box anew. */
export function resized() {
  if (map) map.invalidateSize();
}
