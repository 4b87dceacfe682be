// @ts-check
/* The wall's live state, kept apart from the windows that draw it (big_screen/static/).

   A layout may show the map twice, the ticker in a corner or no KPI tiles at all, and it may
   be switched at any moment: so the alerts, vehicles, KPI figures and chart feed live here,
   once, capped (memory stays flat for days), and each window subscribes to what it draws
   when it is mounted and lets go when it is destroyed. A window mounted after a switch
   draws the current state at once, without waiting for the next event. */
import { config } from "/static/js/lib/config.js";

const W = config.wall;

/** @typedef {{a: any, at: number}} Pin */
/** @typedef {{lat: number, lon: number, at: number}} Vehicle */

export const store = {
  /** @type {Record<string, number>} */
  kpis: {},
  /** unresolved alerts, Map order = recency (the newest last); at most ticker_max */
  alerts: /** @type {Map<string, any>} */ (new Map()),
  /** alerts with a position (map markers); at most alert_markers_max */
  pins: /** @type {Map<string, Pin>} */ (new Map()),
  /** vehicles by id; at most vehicles_max */
  vehicles: /** @type {Map<string, Vehicle>} */ (new Map()),
  /** @type {any} the last chart feed (/big-screen/data/charts) */
  charts: null,
  /** @type {any} districts' FeatureCollection */
  districts: null,
  /** @type {Map<string, string>} district code -> name in the wall's language */
  districtNames: new Map(),
};

/** @type {Map<string, Set<(...args: any[]) => void>>} */
const listeners = new Map();

/**
 * Listen to a topic: kpi (key, value, changed), alert (a), pin (id, pin|null),
 * vehicle (id, v|null), charts (feed), districts (fc). Returns the function that stops it.
 * @param {string} topic
 * @param {(...args: any[]) => void} fn
 */
export function on(topic, fn) {
  let set = listeners.get(topic);
  if (!set) { set = new Set(); listeners.set(topic, set); }
  set.add(fn);
  return () => { /** @type {Set<any>} */ (set).delete(fn); };
}

/** @param {string} topic @param {...any} args */
function emit(topic, ...args) {
  const set = listeners.get(topic);
  if (set) for (const fn of [...set]) fn(...args);
}

/** @type {Record<string, string>} names another producer may use for the same figure */
const KPI_ALIASES = {
  cylinders: "registered", cylinders_registered: "registered", total: "registered",
  cylinders_in_service: "in_service", due: "inspection_due", overdue_inspection: "overdue",
  fills: "fills_today", denials: "denials_today", alerts_open: "open_alerts", alerts: "open_alerts",
};
const KPI_KEYS = new Set(["registered", "in_service", "inspection_due", "overdue", "scrapped", "fills_today", "denials_today", "open_alerts"]);

/** @param {any} obj a kpis row or the chart feed's kpis */
export function applyKpis(obj) {
  if (!obj || typeof obj !== "object") return;
  if (Array.isArray(obj)) { obj.forEach(applyKpis); return; }
  for (const [raw, v] of Object.entries(obj)) {
    if (v && typeof v === "object") { applyKpis(v); continue; }
    const k = KPI_KEYS.has(raw) ? raw : KPI_ALIASES[raw];
    if (!k || typeof v !== "number" || !isFinite(v) || store.kpis[k] === v) continue;
    const had = store.kpis[k] !== undefined;
    store.kpis[k] = v;
    emit("kpi", k, v, had);
  }
}

/**
 * @template T
 * @param {Map<string, T>} m
 * @param {string} topic
 */
function evictOldest(m, topic) {
  const first = m.keys().next();
  if (first.done) return;
  m.delete(first.value);
  emit(topic, first.value, null);
}

/** @param {any} a an alert row (REST or live) */
export function addAlert(a) {
  if (!a || typeof a !== "object" || a.id === undefined || a.id === null) return;
  const id = String(a.id);
  store.alerts.delete(id);
  if (a.state !== "resolved") {
    store.alerts.set(id, a);
    while (store.alerts.size > W.ticker_max) store.alerts.delete(/** @type {string} */ (store.alerts.keys().next().value));
  }
  emit("alert", a);
  const had = store.pins.delete(id);
  if (a.state !== "resolved" && typeof a.lat === "number" && typeof a.lon === "number") {
    while (store.pins.size >= W.alert_markers_max) evictOldest(store.pins, "pin");
    const pin = { a, at: Date.now() };
    store.pins.set(id, pin);
    emit("pin", id, pin);
  } else if (had) {
    emit("pin", id, null);
  }
}

/** @param {any} p a position row */
export function upsertVehicle(p) {
  if (!p || typeof p.lat !== "number" || typeof p.lon !== "number") return;
  const id = String(p.id);
  if (!store.vehicles.delete(id)) {
    while (store.vehicles.size >= W.vehicles_max) evictOldest(store.vehicles, "vehicle");
  }
  const v = { lat: p.lat, lon: p.lon, at: Date.now() };
  store.vehicles.set(id, v);
  emit("vehicle", id, v);
}

/** Drop vehicles and markers that outlived their settings (one sweep per period). */
export function sweep() {
  const now = Date.now();
  for (const [m, ttl, topic] of /** @type {const} */ ([[store.vehicles, W.vehicle_stale_s, "vehicle"], [store.pins, W.alert_marker_ttl_s, "pin"]])) {
    /** @type {Map<string, {at: number}>} */ (m).forEach((entry, id) => {
      if (now - entry.at > ttl * 1000) { m.delete(id); emit(topic, id, null); }
    });
  }
}

/** @param {any} d the chart feed */
export function setCharts(d) {
  store.charts = d;
  applyKpis(d.kpis);
  emit("charts", d);
}

/** @param {{properties: any}} f */
export function districtName(f) {
  return config.lang === "en" && f.properties.name_en ? f.properties.name_en : f.properties.name;
}

/** @param {any} fc */
export function setDistricts(fc) {
  store.districts = fc;
  for (const f of fc.features || []) store.districtNames.set(f.properties.code, districtName(f));
  emit("districts", fc);
}
