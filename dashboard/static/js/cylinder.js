// @ts-check
/* One cylinder: archive (GET /api/v1/cylinders/{id}), trajectory table and its track on a
   Leaflet map (GET /api/v1/cylinders/{id}/trajectory; events with lat/lon are the track), and
   its periodic inspection and scrap records, newest first (GET /api/v1/cylinders/{id}/inspections). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime, number, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { addBaseLayer, toDisplay } from "./lib/map.js";
import { pager, table } from "./lib/table.js";
import { complianceBadge, emptyState, errorState, loading, statusLabel } from "./lib/ui.js";

const root = byId("cylinder-root");
const id = Number(config.cylinder_id);
const TRAJECTORY_PAGE = 200;
/** @type {any} */
let map = null;
/** @type {any} */
let trackLayer = null;

/**
 * @param {string} label
 * @param {Node | string | null | undefined} value
 */
const field = (label, value) => el("div", {}, el("dt", { text: t(label) }), el("dd", {}, value === undefined || value === null || value === "" ? "—" : value));

/** @param {unknown} v @param {string} unit */
const measure = (v, unit) => (v !== null && v !== undefined && v !== "" && v !== 0 ? number(v) + " " + unit : null);

/** @param {any} c */
function renderArchive(c) {
  const loc = c.location || {};
  let where = tOr("location." + loc.kind, loc.kind || "—");
  if (loc.site_name) where += " · " + loc.site_name + " (" + loc.site_code + ")";
  if (loc.device) where += " · " + loc.device;
  const lf = c.last_fill;
  const lastFill = lf ? dateTime(lf.ts) + (lf.site_name ? " · " + lf.site_name : "") + (lf.net_kg ? " · " + number(lf.net_kg) + " kg" : "") : null;
  clear(root).appendChild(el("section", { class: "card", "aria-labelledby": "cyl-title" },
    el("div", { class: "detail-head" },
      el("h1", { id: "cyl-title", class: "mono", text: c.tag }),
      el("span", { class: "badge-lg-wrap" }, complianceBadge(c.compliance)),
      el("span", { class: "badge badge-neutral", text: statusLabel(c.status) })),
    el("p", { class: "muted", text: (c.owner_name || "") + (c.owner_code ? " · " + c.owner_code : "") }),
    el("dl", { class: "dl-grid", dataset: { testid: "archive" } },
      field("cylinder.tag", el("span", { class: "mono", text: c.tag })),
      field("cylinder.stamp", c.stamp),
      field("cylinder.barcode", c.barcode),
      field("cylinder.owner", c.owner_name),
      field("cylinder.spec", c.spec),
      field("cylinder.medium", c.medium),
      field("cylinder.volume_l", c.volume_l !== null && c.volume_l !== undefined ? number(c.volume_l) + " L" : null),
      field("cylinder.tare_kg", c.tare_kg !== null && c.tare_kg !== undefined ? number(c.tare_kg) + " kg" : null),
      field("cylinder.wall_thickness_mm", measure(c.wall_thickness_mm, "mm")),
      field("cylinder.manufacturer", c.manufacturer),
      field("cylinder.manufacture_date", date(c.manufacture_date)),
      field("cylinder.serial_no", c.serial_no),
      field("cylinder.last_inspection", date(c.last_inspection_date)),
      field("cylinder.next_inspection", date(c.next_inspection_date)),
      field("cylinder.inspection_count", String(c.inspection_count)),
      field("cylinder.scrap_date", date(c.scrap_date)),
      field("cylinder.valve_type", tOr("valve." + c.valve_type, c.valve_type)),
      field("cylinder.inspection_ring_no", c.inspection_ring_no),
      field("cylinder.use_registration_no", c.use_registration_no),
      field("cylinder.registered_at", dateTime(c.registered_at)),
      field("cylinder.registered_by", c.registered_by_site_name),
      field("cylinder.location", where),
      field("cylinder.fill_state", tOr("fill_state." + c.fill_state, c.fill_state)),
      field("cylinder.last_fill", lastFill),
      field("cylinder.last_seen", dateTime(loc.seen_at)))));
  document.title = c.tag + " · " + document.title;
}

/** @param {string} kind */
const eventLabel = (kind) => tOr("event." + kind, kind);

/** @param {any[]} items */
function renderTrack(items) {
  const pts = items.filter((e) => e.lat !== null && e.lat !== undefined && e.lon !== null && e.lon !== undefined);
  byId("track-note").textContent = t("cylinder.track_points", { n: pts.length });
  if (!map) {
    const start = config.map;
    map = L.map("track-map", { preferCanvas: true, zoomControl: true }).setView(toDisplay(start.center[0], start.center[1]), start.zoom);
    addBaseLayer(map);
    trackLayer = L.layerGroup().addTo(map);
  }
  trackLayer.clearLayers();
  if (!pts.length) {
    const box = byId("track-map");
    box.classList.add("track-empty");
    box.setAttribute("data-empty", t("cylinder.track_empty"));
    return;
  }
  const lls = pts.map((e) => toDisplay(Number(e.lat), Number(e.lon)));
  L.polyline(lls, { color: "#1d4ed8", weight: 3, opacity: 0.8 }).addTo(trackLayer);
  pts.forEach((e, i) => {
    const last = i === pts.length - 1;
    L.circleMarker(lls[i], { radius: last ? 8 : 5, color: "#fff", weight: 2, fillColor: last ? "#dc2626" : "#1d4ed8", fillOpacity: 1 })
      .bindTooltip(el("div", {}, el("b", { text: (i + 1) + ". " + eventLabel(e.kind) }), el("br"), dateTime(e.ts), e.site_name ? el("div", { text: e.site_name }) : null), { className: "cw-tip" })
      .addTo(trackLayer);
  });
  map.fitBounds(L.latLngBounds(lls).pad(0.2), { maxZoom: 15 });
}

/** @param {any} e */
function describe(e) {
  const d = e.details || {};
  const bits = [];
  if (d.net_kg !== undefined) bits.push(number(d.net_kg) + " kg");
  if (d.reasons) bits.push([].concat(d.reasons).map((r) => tOr("reason." + r, r)).join(", "));
  if (d.result) bits.push(tOr("inspection.result." + d.result, d.result));
  if (d.status) bits.push(statusLabel(d.status));
  return bits.join(" · ") || "—";
}

/** @param {number} page */
async function loadTrajectory(page) {
  const box = byId("trajectory");
  loading(box);
  try {
    const env = await api("/api/v1/cylinders/" + id + "/trajectory", { query: { page: page || 1, page_size: TRAJECTORY_PAGE } });
    const items = env.items || [];
    byId("traj-count").textContent = t("cylinder.events", { n: env.total || items.length });
    if (!items.length) emptyState(box, "cylinder.trajectory_empty", "cylinder.trajectory_empty_hint", "⟲");
    else {
      clear(box).appendChild(table([
        { label: "event.time", render: (e) => dateTime(e.ts), sort: (e) => e.ts },
        { label: "event.kind", render: (e) => el("b", { text: eventLabel(e.kind) }), sort: (e) => e.kind },
        { label: "event.where", render: (e) => (e.site_name ? e.site_name + " (" + e.site_code + ")" : e.device_id || "—") },
        { label: "event.operator", render: (e) => text(e.operator) },
        { label: "event.details", render: describe },
      ], items, (e) => ({ dataset: { kind: e.kind } })));
    }
    pager(byId("traj-pager"), env, loadTrajectory);
    renderTrack(items);
  } catch (err) {
    errorState(box, /** @type {Error} */ (err));
  }
}

const INSPECTION_CLASS = { pass: "badge-ok", fail: "badge-overdue", scrap: "badge-scrapped" };

/** @param {number} page */
async function loadInspections(page) {
  const box = byId("inspection-history");
  loading(box);
  try {
    const env = await api("/api/v1/cylinders/" + id + "/inspections", { query: { page: page || 1 } });
    const items = env.items || [];
    byId("insp-count").textContent = t("inspections.history.count", { n: env.total || items.length });
    if (!items.length) emptyState(box, "inspections.history.empty", "inspections.history.empty_hint", "✓");
    else {
      clear(box).appendChild(table([
        { label: "inspections.col.inspected_on", render: (r) => date(r.inspected_on) },
        { label: "inspections.col.result", render: (r) => el("span", {
          class: "badge " + (/** @type {Record<string, string>} */ (INSPECTION_CLASS)[r.result] || "badge-neutral"),
          text: tOr("inspection.result." + r.result, r.result) }) },
        { label: "inspections.col.outcome", render: (r) => (r.result === "pass"
          ? t("inspections.next_on", { date: date(r.next_inspection_date) })
          : tOr("scrap_reason." + r.scrap_reason, r.scrap_reason || "—")) },
        { label: "inspections.report_no", render: (r) => text(r.report_no) },
        { label: "inspections.note", render: (r) => text(r.notes) },
        { label: "inspections.agency", render: (r) => text(r.agency_name) },
        { label: "inspections.col.by", render: (r) => text(r.recorded_by) },
        { label: "inspections.col.recorded", render: (r) => dateTime(r.created_at) },
      ], items, (r) => ({ dataset: { result: r.result } })));
    }
    pager(byId("insp-pager"), env, loadInspections);
  } catch (err) {
    errorState(box, /** @type {Error} */ (err));
  }
}

api("/api/v1/cylinders/" + id)
  .then((c) => {
    renderArchive(c);
    byId("cylinder-more").hidden = false;
    byId("inspections-card").hidden = false;
    return Promise.all([loadTrajectory(1), loadInspections(1)]);
  })
  .catch((err) => {
    if (err.status !== 404) {
      errorState(root, err);
      return;
    }
    clear(root).appendChild(el("section", { class: "empty-state empty-state-page" },
      el("div", { class: "empty-icon", "aria-hidden": "true", text: "?" }),
      el("h1", { text: t("cylinder.not_found") }),
      el("p", { text: t("cylinder.not_found_hint") }),
      el("p", {}, el("a", { class: "btn btn-primary", href: "/cylinders", text: t("cylinder.back") }))));
  });
