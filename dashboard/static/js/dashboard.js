// @ts-check
/* The regulator dashboard's live layers on the folium-built map (window.CW_MAP, from
   GET /dashboard/map.js): sites with counts, cylinders at customers (supercluster on a
   canvas, map-clusters.js: 100k points stay smooth because only the visible clusters are
   drawn), vehicles moving and alerts flashing from /ws, the side list to acknowledge/resolve
   alerts, and the district/company/compliance filters. Clicking a cylinder at a customer, or
   a site (whose cylinders are its counts), opens the cylinder's card (cylinder-card.js). */
import { actions, details, districtNames, subject } from "./alert-actions.js";
import { openPoint, openSite } from "./cylinder-card.js";
import { api } from "./lib/api.js";
import { config as cfg } from "./lib/config.js";
import { byId, clear, el, formValues, setText, svg } from "./lib/dom.js";
import { dateTime, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { toDisplay } from "./lib/map.js";
import { alertKind, severityBadge, stateBadge, toast } from "./lib/ui.js";
import { LiveSocket } from "./lib/ws.js";
import { ClusterCanvas, clusterIndex } from "./map-clusters.js";

/** @type {any} */
const win = window;
const map = win.CW_MAP;
const districtsLayer = win.CW_DISTRICTS;
const SITES_REFRESH_MS = 60000;
const SITES_DEBOUNCE_MS = 1500;
const ALERTS_PAGE = 200;

const canvas = L.canvas({ padding: 0.5 });
const KIND_COLORS = { filling_station: "#1d4ed8", store: "#0d9488", warehouse: "#7c3aed" };
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

const state = {
  filter: {},
  sites: [],
  alerts: new Map(),
  vehicles: new Map(),
  cylinders: 0,
  live: "connecting"
};
/** @type {{districts: Record<string, string>, companies: Record<string, string>, sites: Record<string, string>}} */
const lookups = { districts: districtNames(), companies: {}, sites: {} };
(cfg.companies || []).forEach(function (c) { lookups.companies[c.id] = c.name; });

const layers = {
  sites: L.layerGroup().addTo(map),
  cylinders: L.layerGroup().addTo(map),
  vehicles: L.layerGroup().addTo(map),
  alerts: L.layerGroup().addTo(map),
  districts: districtsLayer
};
let siteMarkers = {};
const alertMarkers = new Map();

// District names, written as text (the folium layer carries each label's point); hidden
// with the boundaries by the "districts" layer toggle (.hide-district-labels).
if (districtsLayer) {
  districtsLayer.eachLayer(function (layer) {
    const p = layer.feature.properties;
    const icon = L.divIcon({ className: "cw-district-label", html: el("span", { text: p.name }), iconSize: [120, 20], iconAnchor: [60, 10] });
    L.marker(p.label, { icon: icon, interactive: false, keyboard: false }).addTo(map);
  });
}

// ------------------------------------------------------------------ helpers
function matchesFilter(row) {
  if (state.filter.district && row.district && row.district !== state.filter.district) return false;
  if (state.filter.company && row.company_id && String(row.company_id) !== String(state.filter.company)) return false;
  return true;
}
function debounce(fn, ms) {
  let timer = null;
  return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// ------------------------------------------------------------------ sites
function siteTooltip(s) {
  return el("div", {},
    el("b", { text: s.name }), " ", el("span", { class: "mono", text: s.code }), el("br"),
    t("site.kind." + s.kind), s.company_name ? " · " + s.company_name : "", el("br"),
    t("site.full") + " " + number(s.full, 0) + (s.permitted_full_storage != null ? " / " + number(s.permitted_full_storage, 0) : "") +
    " · " + t("site.empty") + " " + number(s.empty, 0), el("br"),
    t("site.open_alerts") + " " + number(s.open_alerts, 0));
}

function renderSites() {
  layers.sites.clearLayers();
  siteMarkers = {};
  lookups.sites = {};
  state.sites.forEach(function (s) {
    lookups.sites[s.id] = s.name;
    const over = s.permitted_full_storage != null && s.full > s.permitted_full_storage;
    const m = L.circleMarker(toDisplay(s.lat, s.lon), {
      renderer: canvas, radius: s.kind === "filling_station" ? 9 : 6,
      color: s.open_alerts > 0 || over ? "#b91c1c" : "#0f2744", weight: s.open_alerts > 0 || over ? 3 : 1.5,
      fillColor: KIND_COLORS[s.kind] || "#334155", fillOpacity: 0.95,
      // a click on the site is the site's: without this it also reaches the map, and a
      // customer's cylinder drawn under the site would open its own popup over the list
      bubblingMouseEvents: false
    });
    m.bindTooltip(siteTooltip(s), { className: "cw-tip", direction: "top", offset: [0, -6] });
    m.on("click", function () { m.closeTooltip(); openSite(map, m.getLatLng(), s, state.filter); });
    m.addTo(layers.sites);
    siteMarkers[s.id] = m;
  });
  renderSiteList();
}

function renderSiteList() {
  const list = byId("site-list");
  clear(list);
  setText("sites-count", String(state.sites.length));
  byId("sites-empty").hidden = state.sites.length > 0;
  state.sites.forEach(function (s) {
    const over = s.permitted_full_storage != null && s.full > s.permitted_full_storage;
    const item = el("li", { class: "site-item", tabindex: "0", dataset: { siteCode: s.code } },
      el("div", {}, el("span", { class: "site-name", text: s.name }), el("span", { class: "site-code", text: s.code })),
      el("div", { class: "site-counts" },
        el("span", { class: over ? "over" : "" }, t("site.full") + " ", el("b", { text: number(s.full, 0) })),
        el("span", {}, t("site.empty") + " ", el("b", { text: number(s.empty, 0) })),
        el("span", { class: s.open_alerts > 0 ? "has-alerts" : "" }, t("site.open_alerts") + " ", el("b", { text: number(s.open_alerts, 0) }))));
    function focus() {
      map.setView(toDisplay(s.lat, s.lon), Math.max(map.getZoom(), 14));
      const m = siteMarkers[s.id];
      if (m) m.openTooltip();
    }
    item.addEventListener("click", focus);
    item.addEventListener("keydown", function (ev) { if (ev.key === "Enter") focus(); });
    list.appendChild(item);
  });
  updateKpis();
}

function loadSites() {
  return api("/dashboard/data/sites", { query: state.filter }).then(function (res) {
    state.sites = res.items || [];
    renderSites();
  }).catch(function (err) { toast(t("error.load_failed") + " " + err.message, "error"); });
}
const refreshSitesSoon = debounce(loadSites, SITES_DEBOUNCE_MS);

// ------------------------------------------------------------------ cylinders (clusters)
/** @type {number[][]} the compact rows: a clicked point's stored (WGS-84) position */
let customerRows = [];
const clusterCanvas = new ClusterCanvas({
  onPoint: function (it) {
    const r = customerRows[it.i];
    if (r) openPoint(map, L.latLng(it.lat, it.lon), [r[0], r[1]], state.filter);
  }
});
layers.cylinders.addLayer(clusterCanvas);

function renderClusters() {
  if (!map.hasLayer(layers.cylinders)) { clusterCanvas.setItems([]); return 0; }
  return clusterCanvas.refresh();
}

function loadCylinders() {
  return api("/dashboard/data/cylinders", { query: state.filter }).then(function (res) {
    customerRows = res.rows || [];
    clusterCanvas.setIndex(clusterIndex(customerRows, toDisplay));
    state.cylinders = res.count || customerRows.length;
    renderClusters();
    updateKpis();
  }).catch(function (err) { toast(t("error.load_failed") + " " + err.message, "error"); });
}

// ------------------------------------------------------------------ vehicles
function vehicleIcon(heading) {
  const h = Number(heading) || 0;
  const arrow = svg("svg", { viewBox: "0 0 24 24", "aria-hidden": "true" },
    svg("circle", { cx: 12, cy: 12, r: 10, fill: "#0f2744", stroke: "#fff", "stroke-width": 2 }),
    svg("path", { d: "M12 5l5 11-5-3-5 3z", fill: "#fbbf24" }));
  arrow.style.transform = "rotate(" + h.toFixed(0) + "deg)";
  return L.divIcon({ className: "cw-vehicle", iconSize: [22, 22], iconAnchor: [11, 11], html: arrow });
}

function upsertVehicle(row) {
  if (row.lat === undefined || row.lat === null) return;
  const ll = toDisplay(Number(row.lat), Number(row.lon));
  let v = state.vehicles.get(String(row.id));
  if (!v) {
    const marker = L.marker(ll, { icon: vehicleIcon(row.heading), keyboard: false, title: row.plate_no || row.name || String(row.id) });
    marker.bindTooltip(el("span", { text: String(row.plate_no || row.name || row.id) }), { className: "cw-tip", direction: "top" });
    marker.addTo(layers.vehicles);
    v = { marker: marker, row: row };
    state.vehicles.set(String(row.id), v);
  } else {
    v.marker.setLatLng(ll);
    if (row.heading !== undefined && row.heading !== null) v.marker.setIcon(vehicleIcon(row.heading));
    v.row = Object.assign({}, v.row, row);
  }
  const node = v.marker.getElement && v.marker.getElement();
  if (node) node.dataset.vehicleId = String(row.id);
}

function loadVehicles() {
  return api("/dashboard/data/vehicles", { query: state.filter }).then(function (res) {
    layers.vehicles.clearLayers();
    state.vehicles.clear();
    (res.items || []).forEach(upsertVehicle);
    updateKpis();
  }).catch(function () { /* vehicles come live from /ws as well */ });
}

function onPositions(rows) {
  rows.forEach(function (r) { if (r.kind === "vehicle" || r.kind === undefined) upsertVehicle(r); });
  updateKpis();
}

// ------------------------------------------------------------------ alerts
function alertLatLon(a) {
  if (a.lat !== undefined && a.lat !== null && a.lon !== undefined && a.lon !== null) return [Number(a.lat), Number(a.lon)];
  const s = state.sites.find(function (x) { return x.id === a.site_id; });
  return s ? [s.lat, s.lon] : null;
}

function sortedAlerts() {
  return Array.from(state.alerts.values()).sort(function (a, b) {
    if (a.state !== b.state) return a.state === "open" ? -1 : 1;
    const r = (SEVERITY_RANK[a.severity] || 9) - (SEVERITY_RANK[b.severity] || 9);
    if (r) return r;
    return String(b.last_at).localeCompare(String(a.last_at));
  });
}

function renderAlertMarkers() {
  layers.alerts.clearLayers();
  alertMarkers.clear();
  state.alerts.forEach(function (a) {
    const ll = alertLatLon(a);
    if (!ll) return;
    const m = L.marker(toDisplay(ll[0], ll[1]), {
      icon: L.divIcon({ className: "cw-alert-marker sev-" + a.severity + " state-" + a.state, html: el("span", {}, el("span", { class: "pulse" }), el("span", { class: "core" })), iconSize: [26, 26] }),
      keyboard: false, zIndexOffset: 1000, title: alertKind(a.kind)
    });
    m.bindTooltip(el("div", {}, el("b", { text: alertKind(a.kind) }), el("br"), String(a.subject_id || "")), { className: "cw-tip", direction: "top" });
    m.on("click", function () { focusAlertItem(a.id); });
    m.addTo(layers.alerts);
    alertMarkers.set(a.id, m);
  });
}

function focusAlertItem(id) {
  selectTab("alerts");
  const item = document.querySelector('[data-alert-id="' + id + '"]');
  if (item) { item.scrollIntoView({ block: "nearest" }); item.classList.add("is-new"); }
}

function renderAlertList(newIds) {
  const list = byId("alert-list");
  clear(list);
  const items = sortedAlerts();
  setText("alerts-count", String(items.length));
  byId("alerts-empty").hidden = items.length > 0;
  items.forEach(function (a) {
    const where = subject(a, lookups);
    const li = el("li", { class: "alert-item sev-" + a.severity + (newIds && newIds.has(a.id) ? " is-new" : ""), dataset: { alertId: String(a.id), state: a.state } },
      el("div", { class: "alert-head" },
        el("span", { class: "alert-kind", text: alertKind(a.kind) }),
        el("span", {}, severityBadge(a.severity), " ", stateBadge(a.state))),
      el("div", { class: "alert-meta" },
        el("span", { class: "alert-subject", text: String(a.subject_id || "") }),
        a.count > 1 ? " ×" + a.count : "", where ? " · " + where : ""),
      details(a) ? el("div", { class: "alert-meta", text: details(a) }) : null,
      el("div", { class: "alert-meta", text: dateTime(a.last_at) }),
      cfg.can_act ? actions(a, onAlertChanged) : null,
      el("button", { class: "linkish", type: "button", onclick: function () {
        const ll = alertLatLon(a);
        if (ll) map.setView(toDisplay(ll[0], ll[1]), Math.max(map.getZoom(), 14));
      } }, t("dash.show_on_map")));
    list.appendChild(li);
  });
  updateKpis();
}

function onAlertChanged(updated) {
  if (updated.state === "resolved") state.alerts.delete(updated.id);
  else state.alerts.set(updated.id, Object.assign({}, state.alerts.get(updated.id) || {}, updated));
  renderAlertList();
  renderAlertMarkers();
  refreshSitesSoon();
}

function onAlertEvents(rows) {
  const fresh = new Set();
  rows.forEach(function (a) {
    if (!matchesFilter(a)) return;
    if (a.state === "resolved") { state.alerts.delete(a.id); return; }
    const prev = state.alerts.get(a.id);
    if (!prev || prev.count !== a.count) fresh.add(a.id);
    state.alerts.set(a.id, Object.assign({}, prev || {}, a));
  });
  renderAlertList(fresh);
  renderAlertMarkers();
  refreshSitesSoon();
}

function loadAlerts() {
  if (!cfg.can_alerts) { byId("alerts-empty").hidden = false; return Promise.resolve(); }
  const base = { district: state.filter.district, company: state.filter.company, page_size: ALERTS_PAGE };
  return Promise.all(["open", "acknowledged"].map(function (st) {
    return api("/api/v1/alerts", { query: Object.assign({ state: st }, base) });
  })).then(function (pages) {
    state.alerts.clear();
    pages.forEach(function (p) { (p.items || []).forEach(function (a) { state.alerts.set(a.id, a); }); });
    renderAlertList();
    renderAlertMarkers();
  }).catch(function (err) {
    renderAlertList();
    toast(t("error.load_failed") + " " + err.message, "error");
  });
}

// ------------------------------------------------------------------ KPIs, tabs, layers
function updateKpis() {
  let full = 0, empty = 0, open = 0;
  state.sites.forEach(function (s) { full += s.full; empty += s.empty; });
  state.alerts.forEach(function (a) { if (a.state === "open") open += 1; });
  setText("kpi-sites", number(state.sites.length, 0));
  setText("kpi-full", number(full, 0));
  setText("kpi-empty", number(empty, 0));
  setText("kpi-customers", number(state.cylinders, 0));
  setText("kpi-vehicles", number(state.vehicles.size, 0));
  setText("kpi-alerts", number(open, 0));
}

function selectTab(name) {
  document.querySelectorAll(".dash-side .tab").forEach(function (tab) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    byId("pane-" + tab.dataset.tab).hidden = !on;
  });
}
document.querySelectorAll(".dash-side .tab").forEach(function (tab) {
  tab.addEventListener("click", function () { selectTab(tab.dataset.tab); });
  tab.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      selectTab(tab.dataset.tab === "alerts" ? "sites" : "alerts");
      document.querySelector('.dash-side .tab[aria-selected="true"]').focus();
    }
  });
});

document.querySelectorAll("[data-layer]").forEach(function (box) {
  box.addEventListener("change", function () {
    const name = box.dataset.layer;
    const layer = layers[name];
    if (!layer) return;
    if (box.checked) { map.addLayer(layer); if (name === "cylinders") renderClusters(); }
    else map.removeLayer(layer);
    if (name === "districts") document.getElementById("dash-map").classList.toggle("hide-district-labels", !box.checked);
  });
});

// ------------------------------------------------------------------ live feed
let booted = false;
const live = new LiveSocket({
  onState: function (s) {
    state.live = s;
    const node = byId("live-indicator");
    node.dataset.state = s;
    node.querySelector("span").textContent = t("live." + s);
  },
  // a reconnect may have missed rows: read the lists again (the map's snapshot comes by itself)
  onOpen: function () { if (booted) { loadAlerts(); loadSites(); } },
  // alerts were lost on the way to the server: its snapshot follows, but holds no resolved
  // ones to take off the list, so read the list again (docs/WEBSOCKET.md "Resync")
  onResync: function (channel) { if (booted && channel === "alerts") loadAlerts(); }
});
function wsFilter() { return { district: state.filter.district, company: state.filter.company ? Number(state.filter.company) : undefined }; }
const posSub = live.subscribe("positions", wsFilter(), onPositions);
const alertSub = cfg.can_alerts ? live.subscribe("alerts", wsFilter(), onAlertEvents) : null;
live.start();

// ------------------------------------------------------------------ filters
const form = byId("dash-filter-form");
function zoomToDistrict(code) {
  if (!code || !districtsLayer) return;
  districtsLayer.eachLayer(function (layer) {
    if (layer.feature && layer.feature.properties.code === code) map.fitBounds(layer.getBounds(), { padding: [40, 40] });
  });
}
function applyFilters() {
  state.filter = formValues(form);
  zoomToDistrict(state.filter.district);
  posSub.update(wsFilter());
  if (alertSub) alertSub.update(wsFilter());
  return Promise.all([loadSites(), loadCylinders(), loadVehicles(), loadAlerts()]);
}
form.addEventListener("change", applyFilters);
form.addEventListener("submit", function (ev) { ev.preventDefault(); applyFilters(); });

map.on("moveend", renderClusters);
setInterval(loadSites, SITES_REFRESH_MS);

// /?site=CODE (the inspection list's "on the map" link): centre on that site, its tooltip open
const focusCode = new URLSearchParams(location.search).get("site");
const ready = applyFilters().then(function () {
  const s = focusCode ? state.sites.find(function (x) { return x.code === focusCode; }) : null;
  if (s) {
    map.setView(toDisplay(s.lat, s.lon), Math.max(map.getZoom(), 14));
    if (siteMarkers[s.id]) siteMarkers[s.id].openTooltip();
  }
  booted = true;
  document.body.dataset.ready = "1";
});

// For tests and the curious: read-only views of what the map holds.
win.cwDashboard = {
  ready: ready,
  state: state,
  counts: function () {
    return { sites: layers.sites.getLayers().length, alerts: state.alerts.size, alertMarkers: alertMarkers.size,
      vehicles: state.vehicles.size, cylinders: state.cylinders, districts: districtsLayer ? districtsLayer.getLayers().length : 0 };
  },
  /** Redraw the visible clusters now; returns [milliseconds, markers drawn]. */
  renderClusters: function () {
    const t0 = performance.now();
    const drawn = renderClusters();
    return [performance.now() - t0, drawn];
  },
  vehicle: function (id) {
    const v = state.vehicles.get(String(id));
    if (!v) return null;
    const ll = v.marker.getLatLng();
    return [ll.lat, ll.lng];
  }
};
