// @ts-check
/* A map window of the wall: district boundaries with their names, vehicles and pulsing alert
   markers (from wall-store.js), on the configured tile layer or none. Non-interactive: a
   wall has no mouse. Each map window is its own Leaflet map; destroying it removes it
   (and its listeners) entirely. */
import { config } from "/static/js/lib/config.js";
import { el } from "/static/js/lib/dom.js";
import { t } from "/static/js/lib/i18n.js";
import { addBaseLayer, geometryToDisplay, hasTiles, toDisplay } from "/static/js/lib/map.js";
import { districtName, on, store } from "./wall-store.js";

/**
 * @param {HTMLElement} body the window's body
 * @param {{primary: boolean, legend: HTMLElement | null}} opts
 */
export function mapWindow(body, opts) {
  const node = el("div", { class: "bs-map" });
  if (opts.primary) node.id = "map";
  body.appendChild(node);
  const map = L.map(node, {
    preferCanvas: true, zoomControl: false, attributionControl: hasTiles,
    dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false,
    keyboard: false, touchZoom: false, tap: false, fadeAnimation: false, zoomSnap: 0.1,
  }).setView(toDisplay(config.map.center[0], config.map.center[1]), config.map.zoom);
  addBaseLayer(map);
  const canvas = L.canvas({ padding: 0.2 });
  const labels = L.layerGroup().addTo(map);
  /** @type {any} */
  let districtLayer = null;
  /** @type {Map<string, any>} */
  const vehicles = new Map();
  /** @type {Map<string, any>} */
  const pins = new Map();
  const nVehicles = el("em", { text: "0" });
  const nAlerts = el("em", { text: "0" });
  if (opts.primary) { nVehicles.id = "n-vehicles"; nAlerts.id = "n-alerts"; }
  if (opts.legend) {
    opts.legend.append(el("i", { class: "veh" }), t("legend.vehicles"), nVehicles,
      el("i", { class: "alr" }), t("legend.alerts"), nAlerts);
  }
  const counts = () => {
    nVehicles.textContent = String(vehicles.size);
    nAlerts.textContent = String(pins.size);
  };

  /** @param {any} fc */
  function drawDistricts(fc) {
    if (districtLayer) map.removeLayer(districtLayer);
    labels.clearLayers();
    const features = (fc.features || []).map((/** @type {any} */ f) => ({ type: "Feature", properties: f.properties, geometry: geometryToDisplay(f.geometry) }));
    districtLayer = L.geoJSON({ type: "FeatureCollection", features }, {
      renderer: canvas, interactive: false,
      style: () => ({ color: "#38bdf8", weight: 1.6, opacity: 0.9, fillColor: "#0ea5e9", fillOpacity: 0.07 }),
    }).addTo(map);
    districtLayer.eachLayer((/** @type {any} */ layer) => {
      const label = L.divIcon({ className: "bs-district-label", html: el("span", { text: districtName(layer.feature) }), iconSize: null });
      L.marker(layer.getBounds().getCenter(), { icon: label, interactive: false, keyboard: false }).addTo(labels);
    });
    const b = districtLayer.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [20, 20] });
  }

  /** @param {string} id @param {import("./wall-store.js").Vehicle | null} v */
  function vehicle(id, v) {
    const old = vehicles.get(id);
    if (!v) { if (old) { map.removeLayer(old); vehicles.delete(id); } counts(); return; }
    const ll = toDisplay(v.lat, v.lon);
    if (old) old.setLatLng(ll);
    else vehicles.set(id, L.circleMarker(ll, { renderer: canvas, interactive: false, radius: 4.5, weight: 1.5, color: "#a5f3fc", fillColor: "#22d3ee", fillOpacity: 0.95 }).addTo(map));
    counts();
  }

  /** @param {string} id @param {import("./wall-store.js").Pin | null} pin */
  function alertPin(id, pin) {
    const old = pins.get(id);
    if (old) { map.removeLayer(old); pins.delete(id); }
    if (pin) {
      const icon = L.divIcon({ className: "bs-pulse sev-" + (pin.a.severity || "warning"), html: el("i"), iconSize: null });
      pins.set(id, L.marker(toDisplay(pin.a.lat, pin.a.lon), { icon, interactive: false, keyboard: false }).addTo(map));
    }
    counts();
  }

  if (store.districts) drawDistricts(store.districts);
  store.vehicles.forEach((v, id) => vehicle(id, v));
  store.pins.forEach((p, id) => alertPin(id, p));
  const stops = [on("districts", drawDistricts), on("vehicle", vehicle), on("pin", alertPin)];
  return {
    resize() { map.invalidateSize(); },
    destroy() {
      stops.forEach((stop) => stop());
      map.remove();
    },
  };
}
