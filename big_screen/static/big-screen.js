// @ts-check
/* CylinderWatch command-centre wall (/big-screen).

   Runs unattended for days, so three rules shape this file:
   1. It never reloads itself. The platform's websocket client (lib/ws.js) reconnects with
      jittered exponential backoff after a server restart or a network cut, re-subscribes,
      and catches a dead link that never reports closing; after each reconnect the feeds
      are re-read to fill what was missed.
   2. Memory stays flat: the ticker, the alert markers and the vehicle markers are capped
      Maps/DOM lists with eviction; listeners are attached once; there is exactly one
      interval per periodic job.
   3. Authentication survives session expiry: a kiosk wall (?kiosk=) trades its token for a
      read-only session and trades again on any 401; a wall on a person's session keeps
      retrying (it recovers as soon as that browser logs in again).
   The shared modules come from the platform's static files (/static/js/lib/), never from a
   Python import of the dashboard. window.__bs exposes counters for tests and a technician. */
import { ApiError, api } from "/static/js/lib/api.js";
import { THEMES, axisStyle, createChart, emptyGraphic, onResize, rem } from "/static/js/lib/chart.js";
import { config } from "/static/js/lib/config.js";
import { byId, el } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { lang, t } from "/static/js/lib/i18n.js";
import { addBaseLayer, geometryToDisplay, hasTiles, toDisplay } from "/static/js/lib/map.js";
import { LiveSocket } from "/static/js/lib/ws.js";

const W = config.wall;
const SWEEP_MS = 30000;
const CLOCK_MS = 1000;
const THEME = THEMES.dark;

// ------------------------------------------------------------------ auth
const kioskToken = new URLSearchParams(location.search).get("kiosk");
/** @type {string | null} the read-only kiosk session (bearer and /ws?token=) */
let sessionToken = null;

async function mint() {
  const body = await api("/big-screen/session", { method: "POST", body: { kiosk: kioskToken }, anonymous: true });
  sessionToken = body.token;
}

/**
 * GET a JSON feed; a kiosk wall (re)mints its session first, and once more on 401.
 * @param {string} path
 * @returns {Promise<any>}
 */
async function feed(path) {
  if (kioskToken && !sessionToken) await mint();
  try {
    return await api(path, { bearer: sessionToken });
  } catch (err) {
    if (!(kioskToken && err instanceof ApiError && err.status === 401)) throw err;
    sessionToken = null;
    await mint();
    return api(path, { bearer: sessionToken });
  }
}

// ------------------------------------------------------------------ connection indicator
const connEl = byId("conn");
const connText = byId("conn-text");
/**
 * @param {string} s
 * @param {{retryInS?: number}} [info]
 */
function setConn(s, info = {}) {
  connEl.setAttribute("data-state", s);
  connText.textContent = t("conn." + s) + (info.retryInS ? " " + info.retryInS + "s" : "");
}

// ------------------------------------------------------------------ clock
const clockEl = byId("clock");
const dateEl = byId("clock-date");
const fmtTime = cityFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
const fmtDate = cityFormat({ year: "numeric", month: "2-digit", day: "2-digit", weekday: "short" });
function tick() {
  const now = new Date();
  clockEl.textContent = fmtTime.format(now);
  dateEl.textContent = fmtDate.format(now);
}
tick();
setInterval(tick, CLOCK_MS);

// ------------------------------------------------------------------ KPI tiles
const KPI_KEYS = ["registered", "in_service", "inspection_due", "overdue", "scrapped", "fills_today", "denials_today", "open_alerts"];
/** @type {Record<string, string>} names another producer may use for the same figure */
const KPI_ALIASES = {
  cylinders: "registered", cylinders_registered: "registered", total: "registered",
  cylinders_in_service: "in_service", due: "inspection_due", overdue_inspection: "overdue",
  fills: "fills_today", denials: "denials_today", alerts_open: "open_alerts", alerts: "open_alerts",
};
/** @type {Record<string, {tile: HTMLElement, value: HTMLElement}>} */
const kpiEls = {};
for (const k of KPI_KEYS) {
  const tile = /** @type {HTMLElement} */ (document.querySelector('[data-kpi="' + k + '"]'));
  kpiEls[k] = { tile, value: /** @type {HTMLElement} */ (tile.querySelector("b")) };
}
const numFmt = new Intl.NumberFormat(lang);

// ------------------------------------------------------------------ state for tests
/** @type {Map<string, {marker: any, at: number}>} id -> marker; Map order is recency */
const vehicles = new Map();
/** @type {Map<string, {marker: any, at: number}>} */
const alertMarkers = new Map();
const ticker = { el: byId("ticker"), byId: /** @type {Map<string, HTMLElement>} */ (new Map()), empty: /** @type {HTMLElement | null} */ (null) };

const live = new LiveSocket({
  token: () => sessionToken,
  // A socket that died before opening may have been refused for an expired session: the
  // browser hides the HTTP status of a failed upgrade, so ask a feed (which re-mints).
  beforeConnect: ({ suspect }) => {
    if (!kioskToken || (sessionToken && !suspect)) return Promise.resolve();
    return suspect ? feed("/api/v1/auth/me") : mint();
  },
  onState: setConn,
  onOpen: (opens) => { if (opens > 1) resync(); },
});

const state = {
  loadedAt: Date.now(),
  ws: live.stats,
  events: { alerts: 0, positions: 0, kpis: 0 },
  charts: { loads: 0, errors: 0, generated_at: null },
  /** @type {Record<string, number>} */
  kpis: {},
  lastAlert: null,
  counts: () => ({
    tickerRows: ticker.el.children.length,
    tickerIds: ticker.byId.size,
    alertMarkers: alertMarkers.size,
    vehicles: vehicles.size,
    domNodes: document.getElementsByTagName("*").length,
  }),
};
/** @type {any} */ (window).__bs = state;

/** @param {any} obj */
function applyKpis(obj) {
  if (!obj || typeof obj !== "object") return;
  if (Array.isArray(obj)) { obj.forEach(applyKpis); return; }
  for (const [raw, v] of Object.entries(obj)) {
    if (v && typeof v === "object") { applyKpis(v); continue; }
    const k = kpiEls[raw] ? raw : KPI_ALIASES[raw];
    if (!k || typeof v !== "number" || !isFinite(v) || state.kpis[k] === v) continue;
    const tile = kpiEls[k];
    tile.value.textContent = numFmt.format(v);
    if (state.kpis[k] !== undefined) {
      tile.tile.classList.remove("flash");
      void tile.tile.offsetWidth; // restart the animation
      tile.tile.classList.add("flash");
    }
    state.kpis[k] = v;
  }
}

// ------------------------------------------------------------------ map
const map = L.map("map", {
  preferCanvas: true, zoomControl: false, attributionControl: hasTiles,
  dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false,
  keyboard: false, touchZoom: false, tap: false, fadeAnimation: false, zoomSnap: 0.1,
}).setView(toDisplay(config.map.center[0], config.map.center[1]), config.map.zoom);
addBaseLayer(map);
const canvas = L.canvas({ padding: 0.2 });
/** @type {any} */
let districtLayer = null;
const labelLayer = L.layerGroup().addTo(map);
/** @type {Map<string, string>} */
const districtNames = new Map();

/** @param {{properties: any}} f */
const districtName = (f) => (lang === "en" && f.properties.name_en ? f.properties.name_en : f.properties.name);

/** @param {any} fc */
function drawDistricts(fc) {
  if (districtLayer) map.removeLayer(districtLayer);
  labelLayer.clearLayers();
  const features = (fc.features || []).map((/** @type {any} */ f) => ({ type: "Feature", properties: f.properties, geometry: geometryToDisplay(f.geometry) }));
  districtLayer = L.geoJSON({ type: "FeatureCollection", features }, {
    renderer: canvas, interactive: false,
    style: () => ({ color: "#38bdf8", weight: 1.6, opacity: 0.9, fillColor: "#0ea5e9", fillOpacity: 0.07 }),
  }).addTo(map);
  districtLayer.eachLayer((/** @type {any} */ layer) => {
    const label = L.divIcon({ className: "bs-district-label", html: el("span", { text: districtName(layer.feature) }), iconSize: null });
    L.marker(layer.getBounds().getCenter(), { icon: label, interactive: false, keyboard: false }).addTo(labelLayer);
  });
  const b = districtLayer.getBounds();
  if (b.isValid()) map.fitBounds(b, { padding: [20, 20] });
}

const nVehicles = byId("n-vehicles");
const nAlerts = byId("n-alerts");

/** @param {Map<string, {marker: any}>} m */
function evictOldest(m) {
  const first = m.keys().next();
  if (first.done) return;
  const entry = /** @type {{marker: any}} */ (m.get(first.value));
  map.removeLayer(entry.marker);
  m.delete(first.value);
}

/** @param {any} p */
function upsertVehicle(p) {
  if (typeof p.lat !== "number" || typeof p.lon !== "number") return;
  const id = String(p.id);
  const ll = toDisplay(p.lat, p.lon);
  let v = vehicles.get(id);
  if (v) {
    v.marker.setLatLng(ll);
    vehicles.delete(id);
  } else {
    const marker = L.circleMarker(ll, { renderer: canvas, interactive: false, radius: 4.5, weight: 1.5, color: "#a5f3fc", fillColor: "#22d3ee", fillOpacity: 0.95 }).addTo(map);
    v = { marker, at: 0 };
    while (vehicles.size >= W.vehicles_max) evictOldest(vehicles);
  }
  v.at = Date.now();
  vehicles.set(id, v);
  nVehicles.textContent = String(vehicles.size);
}

/** @param {any} a */
function upsertAlertMarker(a) {
  if (typeof a.lat !== "number" || typeof a.lon !== "number") return;
  const id = String(a.id);
  const old = alertMarkers.get(id);
  if (old) { map.removeLayer(old.marker); alertMarkers.delete(id); }
  if (a.state !== "resolved") {
    while (alertMarkers.size >= W.alert_markers_max) evictOldest(alertMarkers);
    const icon = L.divIcon({ className: "bs-pulse sev-" + (a.severity || "warning"), html: el("i"), iconSize: null });
    const marker = L.marker(toDisplay(a.lat, a.lon), { icon, interactive: false, keyboard: false }).addTo(map);
    alertMarkers.set(id, { marker, at: Date.now() });
  }
  nAlerts.textContent = String(alertMarkers.size);
}

function sweep() {
  const now = Date.now();
  for (const [markers, ttl] of /** @type {const} */ ([[vehicles, W.vehicle_stale_s], [alertMarkers, W.alert_marker_ttl_s]])) {
    markers.forEach((m, id) => {
      if (now - m.at > ttl * 1000) { map.removeLayer(m.marker); markers.delete(id); }
    });
  }
  nVehicles.textContent = String(vehicles.size);
  nAlerts.textContent = String(alertMarkers.size);
}
setInterval(sweep, SWEEP_MS);

// ------------------------------------------------------------------ alert ticker
function showEmpty() {
  if (ticker.el.children.length === 0) {
    ticker.empty = el("li", { class: "t-empty", text: t("no_alerts") });
    ticker.el.appendChild(ticker.empty);
  }
}

/** @param {any} a */
function alertTime(a) {
  const raw = a.last_at || a.first_at || a.ts;
  const d = raw ? new Date(typeof raw === "number" ? raw : String(raw)) : new Date();
  return isNaN(d.getTime()) ? new Date() : d;
}

/** @param {any} a */
function pushTicker(a) {
  const id = a.id !== undefined && a.id !== null ? String(a.id) : null;
  if (ticker.empty) { ticker.empty.remove(); ticker.empty = null; }
  const old = id ? ticker.byId.get(id) : null;
  if (id && old) { old.remove(); ticker.byId.delete(id); }
  if (a.state === "resolved") { showEmpty(); return; }
  const sev = a.severity || "warning";
  const where = [districtNames.get(a.district || a.district_code) || a.district || a.district_code || "",
    a.company_name || "", a.subject_id ? String(a.subject_id) : ""].filter(Boolean).join(" · ");
  const li = el("li", { class: "sev-" + sev, dataset: id ? { id } : {} },
    el("span", { class: "t-sev", text: t("severity." + sev) }),
    el("span", { class: "t-kind", text: t("kind." + a.kind) }, a.count > 1 ? el("span", { class: "t-count", text: "×" + a.count }) : null),
    el("span", { class: "t-time", text: fmtTime.format(alertTime(a)) }),
    el("span", { class: "t-where", text: where }));
  ticker.el.insertBefore(li, ticker.el.firstChild);
  if (id) ticker.byId.set(id, li);
  while (ticker.el.children.length > W.ticker_max) {
    const last = /** @type {HTMLElement} */ (ticker.el.lastElementChild);
    if (last.dataset.id) ticker.byId.delete(last.dataset.id);
    last.remove();
  }
}

/**
 * @param {any} a
 * @param {boolean} isLive
 */
function onAlert(a, isLive) {
  if (!a || typeof a !== "object") return;
  if (isLive) { state.events.alerts += 1; state.lastAlert = a; }
  pushTicker(a);
  upsertAlertMarker(a);
}

// ------------------------------------------------------------------ charts
const charts = {
  fills: createChart(byId("chart-fills")),
  denials: createChart(byId("chart-denials")),
  districts: createChart(byId("chart-districts")),
  companies: createChart(byId("chart-companies")),
};
/** @type {any} */
let lastCharts = null;

/** @param {number} r @param {number} [left] */
const grid = (r, left = 2.6) => ({ left: left * r, right: 1 * r, top: 1.8 * r, bottom: 1.6 * r });
const HOURS = Array.from({ length: 24 }, (_, h) => (h < 10 ? "0" : "") + h);

/** @param {any} d the chart feed */
function drawCharts(d) {
  const r = rem();
  const ax = axisStyle(THEME, r);
  charts.fills.setOption({
    animationDuration: 600,
    grid: grid(r),
    tooltip: { show: false },
    xAxis: { type: "category", data: HOURS, boundaryGap: true, ...ax, splitLine: { show: false } },
    yAxis: { type: "value", minInterval: 1, ...ax },
    series: [{
      type: "bar", name: t("series.fills"), data: d.fills_per_hour, barWidth: "55%",
      itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [
        { offset: 0, color: "#67e8f9" }, { offset: 1, color: "rgba(14,116,144,0.25)" }]) },
    }, {
      type: "line", data: d.fills_per_hour, smooth: true, symbol: "none",
      lineStyle: { color: THEME.palette[1], width: 0.12 * r },
    }],
  }, true);

  const denials = d.denials_by_reason.map((/** @type {any} */ x) => ({ name: t("reason." + x.reason), value: x.count }));
  charts.denials.setOption({
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
  }, true);

  const dn = d.inspection_by_district;
  charts.districts.setOption({
    color: [THEME.palette[1], THEME.palette[2]],
    graphic: emptyGraphic(THEME, r, dn.length === 0, t("empty")),
    legend: { top: 0, right: 0, itemWidth: 0.8 * r, itemHeight: 0.55 * r, textStyle: { color: "#bfdbfe", fontSize: 0.78 * r } },
    grid: grid(r),
    xAxis: { type: "category", data: dn.map((/** @type {any} */ x) => {
      const n = lang === "en" && x.name_en ? x.name_en : x.name || x.district;
      return n.length > 5 ? n.slice(0, 4) + "…" : n;
    }), ...ax, splitLine: { show: false } },
    yAxis: { type: "value", minInterval: 1, ...ax },
    series: [
      { type: "bar", name: t("series.inspection_due"), data: dn.map((/** @type {any} */ x) => x.inspection_due), barGap: "10%" },
      { type: "bar", name: t("series.overdue"), data: dn.map((/** @type {any} */ x) => x.overdue) },
    ],
  }, true);

  const comp = d.companies_by_anomalies.slice().reverse();
  charts.companies.setOption({
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
  }, true);
}

onResize(() => {
  map.invalidateSize();
  if (lastCharts) drawCharts(lastCharts);
});

// ------------------------------------------------------------------ feeds
const updatedEl = byId("updated");
function loadCharts() {
  return feed("/big-screen/data/charts").then((d) => {
    state.charts.loads += 1;
    state.charts.generated_at = d.generated_at;
    lastCharts = d;
    applyKpis(d.kpis);
    drawCharts(d);
    updatedEl.textContent = t("updated") + " " + fmtTime.format(new Date());
  }).catch((e) => {
    state.charts.errors += 1;
    if (e instanceof ApiError && e.status === 401) setConn("auth");
  });
}

function loadAlerts() {
  return feed("/big-screen/data/alerts").then((d) => {
    // oldest first so the newest ends on top
    d.items.slice().reverse().forEach((/** @type {any} */ a) => onAlert(a, false));
    showEmpty();
  }).catch(() => showEmpty());
}

function loadDistricts() {
  return feed("/big-screen/data/districts").then((fc) => {
    for (const f of fc.features || []) districtNames.set(f.properties.code, districtName(f));
    drawDistricts(fc);
  }).catch(() => { /* the map stays usable without boundaries */ });
}

function loadVehicles() {
  return feed("/big-screen/data/vehicles").then((d) => d.items.forEach(upsertVehicle)).catch(() => {});
}

function resync() {
  loadAlerts();
  loadCharts();
}

// ------------------------------------------------------------------ live
live.subscribe("alerts", {}, (rows) => rows.forEach((a) => onAlert(a, true)));
live.subscribe("positions", {}, (rows) => {
  state.events.positions += rows.length;
  for (const p of rows) if (p && (p.kind === "vehicle" || p.kind === undefined)) upsertVehicle(p);
});
live.subscribe("kpis", {}, (rows) => {
  state.events.kpis += 1;
  rows.forEach(applyKpis);
});

// ------------------------------------------------------------------ start
setConn("connecting");
const boot = kioskToken ? mint().catch(() => setConn("auth")) : Promise.resolve();
boot.then(() => {
  live.start();
  loadDistricts().then(loadVehicles);
  loadAlerts();
  loadCharts();
});
setInterval(loadCharts, W.chart_refresh_s * 1000);
