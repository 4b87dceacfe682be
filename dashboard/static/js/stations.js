// @ts-check
/* Stations, stores and warehouses (GET/POST/PATCH /api/v1/sites): the list with each site's
   permit against its live stock and its filling licence; for the admin and a company admin,
   the form registering or changing a site, its position picked on a small map. Licences are
   changed on the licences page; the storage limit only by the admin (server/api/sites.py). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { date, number, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { addBaseLayer, toDisplay } from "./lib/map.js";
import { listPage } from "./lib/table.js";
import { badge, toast } from "./lib/ui.js";

/** @type {Record<string, string>} */
const districtNames = {};
for (const d of config.districts || []) districtNames[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;

const COORD_DIGITS = 6; // 0.000001° ≈ 0.1 m: finer than any site needs, short enough to read
const PICK_ZOOM = 15; // streets and buildings visible: where a site is placed by hand
const INVERSE_STEPS = 4; // fixed-point steps undoing the GCJ-02 shift: each gains ~1000x in accuracy

/** Today as YYYY-MM-DD in the browser's (the city's) zone. */
function todayIso() {
  const d = new Date();
  return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
}

/** @param {any} s */
function licenceCell(s) {
  if (!s.licence_no && !s.licence_expiry) {
    // a filling licence is a filling station's; a store or warehouse without one is no news
    return s.kind === "filling_station" ? el("span", { class: "muted", dataset: { licence: "none" }, text: t("stations.licence.none") }) : "—";
  }
  const expired = s.licence_expiry && String(s.licence_expiry) < todayIso();
  const state = s.licence_status !== "valid" ? s.licence_status : expired ? "expired" : "valid";
  const cls = { valid: "ok", suspended: "warning", revoked: "scrapped", expired: "overdue" }[state] || "neutral";
  const b = badge(cls, t("stations.licence." + state));
  b.dataset.licence = state;
  return el("div", { class: "cell-stack" },
    el("span", { class: "mono", text: text(s.licence_no) }),
    el("span", { class: "muted", text: t("stations.licence_expiry") + " " + date(s.licence_expiry) }),
    b);
}

/** @param {any} s */
function stockCell(s) {
  const limit = Number(s.storage_limit || 0);
  const full = Number(s.stock_full || 0);
  const over = limit > 0 && full > limit;
  return el("div", { class: "cell-stack", dataset: { testid: "stock" } },
    el("span", { class: over ? "stock-over" : "", dataset: { full: String(full) } },
      t("site.full") + " " + number(full, 0) + " / " + (limit > 0 ? number(limit, 0) : t("stations.no_limit"))),
    el("span", { class: "muted", text: t("site.empty") + " " + number(s.stock_empty, 0) }),
    s.permitted_full_storage === null || s.permitted_full_storage === undefined
      ? el("span", { class: "muted small", text: t("stations.default_limit") }) : null);
}

/** Opens the form for a site (set below where the form exists: the roles that edit). */
let openForm = /** @type {(site: any) => void} */ (() => {});

/** @param {any} s */
function actions(s) {
  const out = [];
  if (config.can_edit) {
    out.push(el("button", { class: "btn btn-sm", type: "button", dataset: { action: "edit" }, onclick: () => openForm(s) }, t("stations.edit")));
  }
  if (config.licences_page && s.kind === "filling_station") {
    out.push(el("a", { class: "btn btn-sm btn-ghost", href: config.licences_page, dataset: { action: "licence" } }, t("stations.licence_link")));
  }
  return out.length ? el("div", { class: "btn-group" }, out) : "—";
}

const page = listPage({
  endpoint: "/api/v1/sites",
  emptyTitle: "stations.empty",
  emptyHint: config.can_edit ? "stations.empty_hint_edit" : "stations.empty_hint",
  rowAttrs: (s) => ({ dataset: { code: s.code } }),
  columns: [
    { label: "stations.code", render: (s) => el("span", { class: "mono", text: s.code }), sort: (s) => s.code },
    { label: "stations.name", render: (s) => el("div", { class: "cell-stack" }, el("b", { text: s.name }), s.address ? el("span", { class: "muted", text: s.address }) : null), sort: (s) => s.name },
    { label: "stations.kind", render: (s) => tOr("site.kind." + s.kind, s.kind), sort: (s) => s.kind },
    { label: "stations.company", render: (s) => text(s.company_name), sort: (s) => s.company_name },
    { label: "stations.district", render: (s) => text(districtNames[s.district_code] || s.district_code), sort: (s) => s.district_code },
    { label: "stations.stock", render: stockCell, sort: (s) => Number(s.stock_full || 0) },
    { label: "stations.licence", render: licenceCell, sort: (s) => s.licence_expiry },
    { label: "common.actions", render: actions },
  ],
});

// ---------------------------------------------------------------- create / edit
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("site-dialog"));
/** @type {any} the site being changed (null: a new one) */
let editing = null;
/** @type {any} */
let pickMap = null;
/** @type {any} */
let marker = null;

/**
 * A drawn (display) position back to WGS-84: toDisplay is the identity or the GCJ-02 shift,
 * whose inverse is found by fixed-point iteration (the shift changes slowly with position).
 * @param {number} lat
 * @param {number} lon
 * @returns {[number, number]}
 */
function fromDisplay(lat, lon) {
  let w = [lat, lon];
  for (let i = 0; i < INVERSE_STEPS; i++) {
    const d = toDisplay(w[0], w[1]);
    w = [w[0] + (lat - d[0]), w[1] + (lon - d[1])];
  }
  return [w[0], w[1]];
}

if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("site-form"));
  const errorBox = byId("site-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("site-save"));
  const latInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("lat"));
  const lonInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("lon"));
  const codeInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("code"));

  /** @returns {[number, number] | null} */
  const typedPosition = () => {
    const lat = parseFloat(latInput.value);
    const lon = parseFloat(lonInput.value);
    return isFinite(lat) && isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? [lat, lon] : null;
  };

  const showMarker = (/** @type {boolean} */ recenter) => {
    if (!pickMap) return;
    const pos = typedPosition();
    if (!pos) {
      if (marker) { marker.remove(); marker = null; }
      return;
    }
    const at = toDisplay(pos[0], pos[1]);
    if (marker) marker.setLatLng(at);
    else marker = L.marker(at, { keyboard: false }).addTo(pickMap);
    if (recenter) pickMap.setView(at, Math.max(pickMap.getZoom(), PICK_ZOOM));
  };

  const ensureMap = () => {
    if (pickMap) return;
    const start = config.map;
    pickMap = L.map("site-map", { zoomControl: true }).setView(toDisplay(start.center[0], start.center[1]), start.zoom);
    addBaseLayer(pickMap);
    pickMap.on("click", (/** @type {any} */ ev) => {
      const [lat, lon] = fromDisplay(ev.latlng.lat, ev.latlng.lng);
      latInput.value = lat.toFixed(COORD_DIGITS);
      lonInput.value = lon.toFixed(COORD_DIGITS);
      showMarker(false);
    });
  };
  latInput.addEventListener("input", () => showMarker(true));
  lonInput.addEventListener("input", () => showMarker(true));

  /** @param {any} site */
  const fill = (site) => {
    form.reset();
    for (const name of ["code", "name", "kind", "company_id", "district_code", "address", "permitted_full_storage", "lat", "lon"]) {
      const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name));
      if (field && site && site[name] !== null && site[name] !== undefined) field.value = String(site[name]);
    }
  };

  /** @param {any} site null: a new site */
  const open = (site) => {
    editing = site;
    fill(site);
    errorBox.hidden = true;
    byId("site-dialog-title").textContent = t(site ? "stations.edit_title" : "stations.create", { code: site ? site.code : "" });
    const kind = /** @type {HTMLSelectElement} */ (form.elements.namedItem("kind"));
    // a company admin cannot give a site a kind it may not register (an agency stays one)
    kind.disabled = Boolean(site) && !Array.from(kind.options).some((o) => o.value === site.kind);
    dialog.showModal();
    ensureMap();
    pickMap.invalidateSize();
    if (site && site.lat !== null && site.lon !== null) showMarker(true);
    else {
      showMarker(false);
      pickMap.setView(toDisplay(config.map.center[0], config.map.center[1]), config.map.zoom);
    }
    (site ? /** @type {HTMLInputElement} */ (form.elements.namedItem("name")) : codeInput).focus();
  };
  openForm = open;

  byId("new-site").addEventListener("click", () => open(null));
  byId("site-cancel").addEventListener("click", () => dialog.close());

  /** The form as the API's fields (numbers as numbers; "" as null). */
  const bodyOf = () => {
    const v = formValues(form);
    /** A field of this form that the user can set. @param {string} name */
    const has = (name) => {
      const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name));
      return field !== null && !field.disabled;
    };
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const name of ["code", "name", "kind", "district_code", "address"]) {
      if (has(name)) out[name] = v[name] ? v[name].trim() : null;
    }
    if (has("company_id")) out.company_id = v.company_id ? Number(v.company_id) : null;
    if (has("permitted_full_storage")) {
      out.permitted_full_storage = v.permitted_full_storage ? Number(v.permitted_full_storage) : null;
    }
    out.lat = v.lat ? Number(v.lat) : null;
    out.lon = v.lon ? Number(v.lon) : null;
    return out;
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const all = bodyOf();
    /** @type {Record<string, unknown>} */
    const body = {};
    for (const [k, v] of Object.entries(all)) {
      if (editing) {
        const before = editing[k] === undefined ? null : editing[k];
        if (String(before) !== String(v)) body[k] = v;
      } else if (v !== null) {
        body[k] = v;
      }
    }
    if (editing && !Object.keys(body).length) {
      dialog.close();
      return;
    }
    saveBtn.disabled = true;
    try {
      if (editing) await api("/api/v1/sites/" + editing.id, { method: "PATCH", body });
      else await api("/api/v1/sites", { method: "POST", body });
      dialog.close();
      toast(t(editing ? "stations.saved" : "stations.created", { code: String(all.code || (editing && editing.code)) }));
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });
}
