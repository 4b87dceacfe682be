/* The regulator dashboard's live layers on the folium-built map (window.CW_MAP):
   sites with counts, cylinders at customers (supercluster: 100k points stay smooth because
   only the visible clusters are drawn), vehicles moving and alerts flashing from /ws, the
   side list to acknowledge/resolve alerts, and the district/company/compliance filters. */
(function () {
  "use strict";
  var CW = window.CW, L = window.L, t = CW.t, el = CW.el;
  var cfg = CW.config;
  var map = window.CW_MAP;
  var districtsLayer = window.CW_DISTRICTS;
  if (!map) { console.error("dashboard: map missing"); return; }

  var canvas = L.canvas({ padding: 0.5 });
  var STATUS_COLORS = ["#16a34a", "#eab308", "#f97316", "#dc2626", "#6b7280"];
  var KIND_COLORS = { filling_station: "#1d4ed8", store: "#0d9488", warehouse: "#7c3aed" };
  var SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

  var state = {
    filter: {},
    sites: [],
    alerts: new Map(),
    vehicles: new Map(),
    cylinders: 0,
    live: "connecting"
  };
  var lookups = { districts: {}, companies: {}, sites: {} };
  (cfg.districts || []).forEach(function (d) { lookups.districts[d.code] = cfg.lang === "en" && d.name_en ? d.name_en : d.name; });
  (cfg.companies || []).forEach(function (c) { lookups.companies[c.id] = c.name; });

  var layers = {
    sites: L.layerGroup().addTo(map),
    cylinders: L.layerGroup().addTo(map),
    vehicles: L.layerGroup().addTo(map),
    alerts: L.layerGroup().addTo(map),
    districts: districtsLayer
  };
  var siteMarkers = {};
  var alertMarkers = new Map();

  // ------------------------------------------------------------------ helpers
  function $(id) { return document.getElementById(id); }
  function setText(id, value) { var n = $(id); if (n) n.textContent = value; }
  function matchesFilter(row) {
    if (state.filter.district && row.district && row.district !== state.filter.district) return false;
    if (state.filter.company && row.company_id && String(row.company_id) !== String(state.filter.company)) return false;
    return true;
  }
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // ------------------------------------------------------------------ sites
  function siteTooltip(s) {
    return el("div", {},
      el("b", { text: s.name }), " ", el("span", { class: "mono", text: s.code }), el("br"),
      t("site.kind." + s.kind), s.company_name ? " · " + s.company_name : "", el("br"),
      t("site.full") + " " + CW.number(s.full, 0) + (s.permitted_full_storage != null ? " / " + CW.number(s.permitted_full_storage, 0) : "") +
      " · " + t("site.empty") + " " + CW.number(s.empty, 0), el("br"),
      t("site.open_alerts") + " " + CW.number(s.open_alerts, 0));
  }

  function renderSites() {
    layers.sites.clearLayers();
    siteMarkers = {};
    lookups.sites = {};
    state.sites.forEach(function (s) {
      lookups.sites[s.id] = s.name;
      var over = s.permitted_full_storage != null && s.full > s.permitted_full_storage;
      var m = L.circleMarker(CW.toDisplay(s.lat, s.lon), {
        renderer: canvas, radius: s.kind === "filling_station" ? 9 : 6,
        color: s.open_alerts > 0 || over ? "#b91c1c" : "#0f2744", weight: s.open_alerts > 0 || over ? 3 : 1.5,
        fillColor: KIND_COLORS[s.kind] || "#334155", fillOpacity: 0.95
      });
      m.bindTooltip(siteTooltip(s), { className: "cw-tip", direction: "top", offset: [0, -6] });
      m.addTo(layers.sites);
      siteMarkers[s.id] = m;
    });
    renderSiteList();
  }

  function renderSiteList() {
    var list = $("site-list");
    CW.clear(list);
    setText("sites-count", String(state.sites.length));
    $("sites-empty").hidden = state.sites.length > 0;
    state.sites.forEach(function (s) {
      var over = s.permitted_full_storage != null && s.full > s.permitted_full_storage;
      var item = el("li", { class: "site-item", tabindex: "0", dataset: { siteCode: s.code } },
        el("div", {}, el("span", { class: "site-name", text: s.name }), el("span", { class: "site-code", text: s.code })),
        el("div", { class: "site-counts" },
          el("span", { class: over ? "over" : "" }, t("site.full") + " ", el("b", { text: CW.number(s.full, 0) })),
          el("span", {}, t("site.empty") + " ", el("b", { text: CW.number(s.empty, 0) })),
          el("span", { class: s.open_alerts > 0 ? "has-alerts" : "" }, t("site.open_alerts") + " ", el("b", { text: CW.number(s.open_alerts, 0) }))));
      function focus() {
        map.setView(CW.toDisplay(s.lat, s.lon), Math.max(map.getZoom(), 14));
        var m = siteMarkers[s.id];
        if (m) m.openTooltip();
      }
      item.addEventListener("click", focus);
      item.addEventListener("keydown", function (ev) { if (ev.key === "Enter") focus(); });
      list.appendChild(item);
    });
    updateKpis();
  }

  function loadSites() {
    return CW.api("/dashboard/data/sites", { query: state.filter }).then(function (res) {
      state.sites = res.items || [];
      renderSites();
    }).catch(function (err) { CW.toast(t("error.load_failed") + " " + err.message, "error"); });
  }
  var refreshSitesSoon = debounce(loadSites, 1500);

  // ------------------------------------------------------------------ cylinders (clusters)
  // Clusters and single cylinders are drawn on one canvas of their own: a redraw is a few
  // thousand arc() calls at most, never a DOM node or a Leaflet object per cylinder, so a
  // zoom or pan over 100k cylinders stays within a frame or two.
  var index = null;
  var CLUSTER_FILL = { ok: "rgba(22,163,74,0.88)", warn: "rgba(234,179,8,0.92)", bad: "rgba(220,38,38,0.88)" };
  var CLUSTER_HALO = { ok: "rgba(22,163,74,0.25)", warn: "rgba(234,179,8,0.28)", bad: "rgba(220,38,38,0.25)" };

  function abbrev(n) {
    if (n >= 10000) return Math.round(n / 1000) + "k";
    if (n >= 1000) return (n / 1000).toFixed(1) + "k";
    return String(n);
  }

  var ClusterCanvas = L.Layer.extend({
    onAdd: function (m) {
      // its own pane under the overlay pane: sites, vehicles and alerts stay on top
      var pane = m.getPane("cwClusters") || m.createPane("cwClusters");
      pane.style.zIndex = 350;
      pane.style.pointerEvents = "none";
      this._canvas = L.DomUtil.create("canvas", "cw-cluster-canvas leaflet-zoom-hide", pane);
      m.on("moveend resize", this._reset, this);
      m.on("click", this._onClick, this);
      m.on("mousemove", this._onMove, this);
      this._items = this._items || [];
      this._reset();
    },
    onRemove: function (m) {
      L.DomUtil.remove(this._canvas);
      m.off("moveend resize", this._reset, this);
      m.off("click", this._onClick, this);
      m.off("mousemove", this._onMove, this);
    },
    setItems: function (items) { this._items = items; if (this._map) this._draw(); },
    _reset: function () {
      var size = this._map.getSize();
      var ratio = window.devicePixelRatio || 1;
      L.DomUtil.setPosition(this._canvas, this._map.containerPointToLayerPoint([0, 0]));
      this._canvas.width = size.x * ratio;
      this._canvas.height = size.y * ratio;
      this._canvas.style.width = size.x + "px";
      this._canvas.style.height = size.y + "px";
      this._draw();
    },
    _draw: function () {
      var ctx = this._canvas.getContext("2d");
      var ratio = window.devicePixelRatio || 1;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, this._canvas.width, this._canvas.height);
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "bold 12px system-ui, sans-serif";
      var m = this._map;
      this._items.forEach(function (it) {
        var p = m.latLngToContainerPoint([it.lat, it.lon]);
        it.x = p.x; it.y = p.y;
        ctx.beginPath();
        if (it.n) {
          ctx.fillStyle = CLUSTER_HALO[it.cls];
          ctx.arc(p.x, p.y, it.r + 5, 0, 2 * Math.PI);
          ctx.fill();
          ctx.beginPath();
          ctx.fillStyle = CLUSTER_FILL[it.cls];
          ctx.arc(p.x, p.y, it.r, 0, 2 * Math.PI);
          ctx.fill();
          ctx.fillStyle = it.cls === "warn" ? "#422006" : "#ffffff";
          ctx.fillText(abbrev(it.n), p.x, p.y);
        } else {
          ctx.fillStyle = STATUS_COLORS[it.s] || "#334155";
          ctx.arc(p.x, p.y, 4.5, 0, 2 * Math.PI);
          ctx.fill();
          ctx.lineWidth = 1;
          ctx.strokeStyle = "#ffffff";
          ctx.stroke();
        }
      });
    },
    _hit: function (e) {
      var p = e.containerPoint, best = null, bestD = Infinity;
      this._items.forEach(function (it) {
        var d = (it.x - p.x) * (it.x - p.x) + (it.y - p.y) * (it.y - p.y);
        var r = (it.n ? it.r + 3 : 7);
        if (d <= r * r && d < bestD) { best = it; bestD = d; }
      });
      return best;
    },
    _onMove: function (e) {
      var hit = this._hit(e);
      this._map.getContainer().style.cursor = hit ? "pointer" : "";
    },
    _onClick: function (e) {
      var hit = this._hit(e);
      if (!hit) return;
      if (hit.n) {
        this._map.setView([hit.lat, hit.lon], Math.min(index.getClusterExpansionZoom(hit.id), 18));
      } else {
        L.tooltip({ className: "cw-tip", direction: "top" }).setLatLng([hit.lat, hit.lon])
          .setContent(t("compliance." + (cfg.compliance_codes || [])[hit.s])).openOn(this._map);
      }
    }
  });
  var clusterCanvas = new ClusterCanvas();
  layers.cylinders.addLayer(clusterCanvas);

  function renderClusters() {
    if (!index || !map.hasLayer(layers.cylinders)) { clusterCanvas.setItems([]); return 0; }
    var b = map.getBounds().pad(0.1);
    var zoom = Math.round(map.getZoom());
    var found = index.getClusters([b.getWest(), Math.max(-85, b.getSouth()), b.getEast(), Math.min(85, b.getNorth())], zoom);
    var items = new Array(found.length);
    for (var i = 0; i < found.length; i++) {
      var c = found[i], p = c.properties;
      var it = { lon: c.geometry.coordinates[0], lat: c.geometry.coordinates[1] };
      if (p.cluster) {
        var n = p.point_count;
        it.n = n;
        it.id = p.cluster_id;
        it.r = n < 100 ? 15 : n < 1000 ? 19 : n < 10000 ? 23 : 27;
        it.cls = p.bad / n > 0.05 ? "bad" : (p.due / n > 0.1 ? "warn" : "ok");
      } else {
        it.s = p.s;
      }
      items[i] = it;
    }
    clusterCanvas.setItems(items);
    return items.length;
  }

  function loadCylinders() {
    return CW.api("/dashboard/data/cylinders", { query: state.filter }).then(function (res) {
      var rows = res.rows || [];
      var points = new Array(rows.length);
      for (var i = 0; i < rows.length; i++) {
        var ll = CW.toDisplay(rows[i][0], rows[i][1]);
        points[i] = { type: "Feature", properties: { s: rows[i][2] }, geometry: { type: "Point", coordinates: [ll[1], ll[0]] } };
      }
      index = new window.Supercluster({
        radius: 80, maxZoom: 17,
        map: function (p) { return { bad: p.s >= 3 ? 1 : 0, due: p.s === 1 || p.s === 2 ? 1 : 0 }; },
        reduce: function (a, b) { a.bad += b.bad; a.due += b.due; }
      });
      index.load(points);
      state.cylinders = res.count || rows.length;
      renderClusters();
      updateKpis();
    }).catch(function (err) { CW.toast(t("error.load_failed") + " " + err.message, "error"); });
  }

  // ------------------------------------------------------------------ vehicles
  function vehicleIcon(heading) {
    var h = Number(heading) || 0;
    return L.divIcon({
      className: "cw-vehicle", iconSize: [22, 22], iconAnchor: [11, 11],
      html: '<svg viewBox="0 0 24 24" style="transform:rotate(' + h.toFixed(0) + 'deg)" aria-hidden="true">' +
        '<circle cx="12" cy="12" r="10" fill="#0f2744" stroke="#fff" stroke-width="2"/>' +
        '<path d="M12 5l5 11-5-3-5 3z" fill="#fbbf24"/></svg>'
    });
  }

  function upsertVehicle(row) {
    if (row.lat === undefined || row.lat === null) return;
    var ll = CW.toDisplay(Number(row.lat), Number(row.lon));
    var v = state.vehicles.get(String(row.id));
    if (!v) {
      var marker = L.marker(ll, { icon: vehicleIcon(row.heading), keyboard: false, title: row.plate_no || row.name || String(row.id) });
      marker.bindTooltip(String(row.plate_no || row.name || row.id), { className: "cw-tip", direction: "top" });
      marker.addTo(layers.vehicles);
      v = { marker: marker, row: row };
      state.vehicles.set(String(row.id), v);
    } else {
      v.marker.setLatLng(ll);
      if (row.heading !== undefined && row.heading !== null) v.marker.setIcon(vehicleIcon(row.heading));
      v.row = Object.assign({}, v.row, row);
    }
    var node = v.marker.getElement && v.marker.getElement();
    if (node) node.dataset.vehicleId = String(row.id);
  }

  function loadVehicles() {
    return CW.api("/dashboard/data/vehicles", { query: state.filter }).then(function (res) {
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
    var s = state.sites.find(function (x) { return x.id === a.site_id; });
    return s ? [s.lat, s.lon] : null;
  }

  function sortedAlerts() {
    return Array.from(state.alerts.values()).sort(function (a, b) {
      if (a.state !== b.state) return a.state === "open" ? -1 : 1;
      var r = (SEVERITY_RANK[a.severity] || 9) - (SEVERITY_RANK[b.severity] || 9);
      if (r) return r;
      return String(b.last_at).localeCompare(String(a.last_at));
    });
  }

  function renderAlertMarkers() {
    layers.alerts.clearLayers();
    alertMarkers.clear();
    state.alerts.forEach(function (a) {
      var ll = alertLatLon(a);
      if (!ll) return;
      var m = L.marker(CW.toDisplay(ll[0], ll[1]), {
        icon: L.divIcon({ className: "cw-alert-marker sev-" + a.severity + " state-" + a.state, html: '<span class="pulse"></span><span class="core"></span>', iconSize: [26, 26] }),
        keyboard: false, zIndexOffset: 1000, title: CW.alertKind(a.kind)
      });
      m.bindTooltip(el("div", {}, el("b", { text: CW.alertKind(a.kind) }), el("br"), String(a.subject_id || "")), { className: "cw-tip", direction: "top" });
      m.on("click", function () { focusAlertItem(a.id); });
      m.addTo(layers.alerts);
      alertMarkers.set(a.id, m);
    });
  }

  function focusAlertItem(id) {
    selectTab("alerts");
    var item = document.querySelector('[data-alert-id="' + id + '"]');
    if (item) { item.scrollIntoView({ block: "nearest" }); item.classList.add("is-new"); }
  }

  function renderAlertList(newIds) {
    var list = $("alert-list");
    CW.clear(list);
    var items = sortedAlerts();
    setText("alerts-count", String(items.length));
    $("alerts-empty").hidden = items.length > 0;
    items.forEach(function (a) {
      var where = CW.alerts.subject(a, lookups);
      var li = el("li", { class: "alert-item sev-" + a.severity + (newIds && newIds.has(a.id) ? " is-new" : ""), dataset: { alertId: String(a.id), state: a.state } },
        el("div", { class: "alert-head" },
          el("span", { class: "alert-kind", text: CW.alertKind(a.kind) }),
          el("span", {}, CW.severityBadge(a.severity), " ", CW.stateBadge(a.state))),
        el("div", { class: "alert-meta" },
          el("span", { class: "alert-subject", text: String(a.subject_id || "") }),
          a.count > 1 ? " ×" + a.count : "", where ? " · " + where : ""),
        CW.alerts.details(a) ? el("div", { class: "alert-meta", text: CW.alerts.details(a) }) : null,
        el("div", { class: "alert-meta", text: CW.dateTime(a.last_at) }),
        cfg.can_act ? CW.alerts.actions(a, onAlertChanged) : null,
        el("button", { class: "linkish", type: "button", onclick: function () {
          var ll = alertLatLon(a);
          if (ll) map.setView(CW.toDisplay(ll[0], ll[1]), Math.max(map.getZoom(), 14));
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
    var fresh = new Set();
    rows.forEach(function (a) {
      if (!matchesFilter(a)) return;
      if (a.state === "resolved") { state.alerts.delete(a.id); return; }
      var prev = state.alerts.get(a.id);
      if (!prev || prev.count !== a.count) fresh.add(a.id);
      state.alerts.set(a.id, Object.assign({}, prev || {}, a));
    });
    renderAlertList(fresh);
    renderAlertMarkers();
    refreshSitesSoon();
  }

  function loadAlerts() {
    if (!cfg.can_alerts) { $("alerts-empty").hidden = false; return Promise.resolve(); }
    var base = { district: state.filter.district, company: state.filter.company, page_size: 200 };
    return Promise.all(["open", "acknowledged"].map(function (st) {
      return CW.api("/api/v1/alerts", { query: Object.assign({ state: st }, base) });
    })).then(function (pages) {
      state.alerts.clear();
      pages.forEach(function (p) { (p.items || []).forEach(function (a) { state.alerts.set(a.id, a); }); });
      renderAlertList();
      renderAlertMarkers();
    }).catch(function (err) {
      renderAlertList();
      CW.toast(t("error.load_failed") + " " + err.message, "error");
    });
  }

  // ------------------------------------------------------------------ KPIs, tabs, layers
  function updateKpis() {
    var full = 0, empty = 0, open = 0;
    state.sites.forEach(function (s) { full += s.full; empty += s.empty; });
    state.alerts.forEach(function (a) { if (a.state === "open") open += 1; });
    setText("kpi-sites", CW.number(state.sites.length, 0));
    setText("kpi-full", CW.number(full, 0));
    setText("kpi-empty", CW.number(empty, 0));
    setText("kpi-customers", CW.number(state.cylinders, 0));
    setText("kpi-vehicles", CW.number(state.vehicles.size, 0));
    setText("kpi-alerts", CW.number(open, 0));
  }

  function selectTab(name) {
    document.querySelectorAll(".dash-side .tab").forEach(function (tab) {
      var on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      $("pane-" + tab.dataset.tab).hidden = !on;
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
      var name = box.dataset.layer;
      var layer = layers[name];
      if (!layer) return;
      if (box.checked) { map.addLayer(layer); if (name === "cylinders") renderClusters(); }
      else map.removeLayer(layer);
      if (name === "districts") document.getElementById("dash-map").classList.toggle("hide-district-labels", !box.checked);
    });
  });

  // ------------------------------------------------------------------ live feed
  var live = new CW.Live({
    onState: function (s) {
      state.live = s;
      var node = $("live-indicator");
      node.dataset.state = s;
      node.querySelector("span").textContent = t("live." + s);
      if (s === "live" && booted) { loadAlerts(); loadSites(); }
    }
  });
  var booted = false;
  function wsFilter() { return { district: state.filter.district, company: state.filter.company ? Number(state.filter.company) : undefined }; }
  var posSub = live.subscribe("positions", wsFilter(), onPositions);
  var alertSub = cfg.can_alerts ? live.subscribe("alerts", wsFilter(), onAlertEvents) : null;

  // ------------------------------------------------------------------ filters
  var form = $("dash-filter-form");
  function zoomToDistrict(code) {
    if (!code || !districtsLayer) return;
    districtsLayer.eachLayer(function (layer) {
      if (layer.feature && layer.feature.properties.code === code) map.fitBounds(layer.getBounds(), { padding: [40, 40] });
    });
  }
  function applyFilters() {
    state.filter = CW.formValues(form);
    zoomToDistrict(state.filter.district);
    posSub.update(wsFilter());
    if (alertSub) alertSub.update(wsFilter());
    return Promise.all([loadSites(), loadCylinders(), loadVehicles(), loadAlerts()]);
  }
  form.addEventListener("change", applyFilters);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); applyFilters(); });

  map.on("moveend", renderClusters);
  setInterval(loadSites, 60000);

  var ready = applyFilters().then(function () { booted = true; document.body.dataset.ready = "1"; });

  // For tests and the curious: read-only views of what the map holds.
  window.cwDashboard = {
    ready: ready,
    state: state,
    counts: function () {
      return { sites: layers.sites.getLayers().length, alerts: state.alerts.size, alertMarkers: alertMarkers.size,
        vehicles: state.vehicles.size, cylinders: state.cylinders, districts: districtsLayer ? districtsLayer.getLayers().length : 0 };
    },
    /** Redraw the visible clusters now; returns [milliseconds, markers drawn]. */
    renderClusters: function () {
      var t0 = performance.now();
      var drawn = renderClusters();
      return [performance.now() - t0, drawn];
    },
    vehicle: function (id) {
      var v = state.vehicles.get(String(id));
      if (!v) return null;
      var ll = v.marker.getLatLng();
      return [ll.lat, ll.lng];
    }
  };
})();
