/* One cylinder: archive (GET /api/v1/cylinders/{id}), trajectory table and its track on a
   Leaflet map (GET /api/v1/cylinders/{id}/trajectory; events with lat/lon are the track). */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el, t = CW.t;
  var root = document.getElementById("cylinder-root");
  var id = root.dataset.cylinderId;
  var map = null, trackLayer = null;

  function field(label, value) {
    return el("div", {}, el("dt", { text: t(label) }), el("dd", {}, value === undefined || value === null || value === "" ? "—" : value));
  }

  function renderArchive(c) {
    CW.clear(root);
    var loc = c.location || {};
    var where = CW.tOr("location." + loc.kind, loc.kind || "—");
    if (loc.site_name) where += " · " + loc.site_name + " (" + loc.site_code + ")";
    if (loc.device) where += " · " + loc.device;
    var lf = c.last_fill;
    var lastFill = lf ? CW.dateTime(lf.ts) + (lf.site_name ? " · " + lf.site_name : "") + (lf.net_kg ? " · " + CW.number(lf.net_kg) + " kg" : "") : null;
    root.appendChild(el("section", { class: "card", "aria-labelledby": "cyl-title" },
      el("div", { class: "detail-head" },
        el("h1", { id: "cyl-title", class: "mono", text: c.tag }),
        el("span", { class: "badge-lg-wrap" }, CW.complianceBadge(c.compliance)),
        el("span", { class: "badge badge-neutral", text: CW.statusLabel(c.status) })),
      el("p", { class: "muted", text: (c.owner_name || "") + (c.owner_code ? " · " + c.owner_code : "") }),
      el("dl", { class: "dl-grid", dataset: { testid: "archive" } },
        field("cylinder.tag", el("span", { class: "mono", text: c.tag })),
        field("cylinder.stamp", c.stamp),
        field("cylinder.barcode", c.barcode),
        field("cylinder.owner", c.owner_name),
        field("cylinder.spec", c.spec),
        field("cylinder.medium", c.medium),
        field("cylinder.volume_l", c.volume_l !== null && c.volume_l !== undefined ? CW.number(c.volume_l) + " L" : null),
        field("cylinder.tare_kg", c.tare_kg !== null && c.tare_kg !== undefined ? CW.number(c.tare_kg) + " kg" : null),
        field("cylinder.wall_thickness_mm", c.wall_thickness_mm ? CW.number(c.wall_thickness_mm) + " mm" : null),
        field("cylinder.manufacturer", c.manufacturer),
        field("cylinder.manufacture_date", CW.date(c.manufacture_date)),
        field("cylinder.serial_no", c.serial_no),
        field("cylinder.last_inspection", CW.date(c.last_inspection_date)),
        field("cylinder.next_inspection", CW.date(c.next_inspection_date)),
        field("cylinder.inspection_count", String(c.inspection_count)),
        field("cylinder.scrap_date", CW.date(c.scrap_date)),
        field("cylinder.valve_type", CW.tOr("valve." + c.valve_type, c.valve_type)),
        field("cylinder.inspection_ring_no", c.inspection_ring_no),
        field("cylinder.use_registration_no", c.use_registration_no),
        field("cylinder.registered_at", CW.dateTime(c.registered_at)),
        field("cylinder.registered_by", c.registered_by_site_name),
        field("cylinder.location", where),
        field("cylinder.fill_state", CW.tOr("fill_state." + c.fill_state, c.fill_state)),
        field("cylinder.last_fill", lastFill),
        field("cylinder.last_seen", CW.dateTime(loc.seen_at)))));
    document.title = c.tag + " · " + document.title;
  }

  function eventLabel(kind) { return CW.tOr("event." + kind, kind); }

  function renderTrack(items) {
    var pts = items.filter(function (e) { return e.lat !== null && e.lat !== undefined && e.lon !== null && e.lon !== undefined; });
    document.getElementById("track-note").textContent = t("cylinder.track_points", { n: pts.length });
    if (!map) {
      var cfg = CW.config.map;
      map = L.map("track-map", { preferCanvas: true, zoomControl: true }).setView(CW.toDisplay(cfg.center[0], cfg.center[1]), cfg.zoom);
      CW.baseLayer(map);
      trackLayer = L.layerGroup().addTo(map);
    }
    trackLayer.clearLayers();
    if (!pts.length) {
      var box = document.getElementById("track-map");
      box.classList.add("track-empty");
      box.setAttribute("data-empty", t("cylinder.track_empty"));
      return;
    }
    var lls = pts.map(function (e) { return CW.toDisplay(Number(e.lat), Number(e.lon)); });
    L.polyline(lls, { color: "#1d4ed8", weight: 3, opacity: 0.8 }).addTo(trackLayer);
    pts.forEach(function (e, i) {
      var last = i === pts.length - 1;
      L.circleMarker(lls[i], { radius: last ? 8 : 5, color: "#fff", weight: 2, fillColor: last ? "#dc2626" : "#1d4ed8", fillOpacity: 1 })
        .bindTooltip(el("div", {}, el("b", { text: (i + 1) + ". " + eventLabel(e.kind) }), el("br"), CW.dateTime(e.ts), e.site_name ? el("div", { text: e.site_name }) : null), { className: "cw-tip" })
        .addTo(trackLayer);
    });
    map.fitBounds(L.latLngBounds(lls).pad(0.2), { maxZoom: 15 });
  }

  function describe(e) {
    var d = e.details || {};
    var bits = [];
    if (d.net_kg !== undefined) bits.push(CW.number(d.net_kg) + " kg");
    if (d.reasons) bits.push([].concat(d.reasons).map(function (r) { return CW.tOr("reason." + r, r); }).join(", "));
    if (d.result) bits.push(CW.tOr("inspection.result." + d.result, d.result));
    if (d.status) bits.push(CW.statusLabel(d.status));
    return bits.join(" · ") || "—";
  }

  function loadTrajectory(page) {
    var box = document.getElementById("trajectory");
    CW.loading(box);
    return CW.api("/api/v1/cylinders/" + id + "/trajectory", { query: { page: page || 1, page_size: 200 } }).then(function (env) {
      var items = env.items || [];
      document.getElementById("traj-count").textContent = t("cylinder.events", { n: env.total || items.length });
      if (!items.length) CW.emptyState(box, "cylinder.trajectory_empty", "cylinder.trajectory_empty_hint", "⟲");
      else {
        CW.clear(box);
        box.appendChild(CW.table([
          { label: "event.time", render: function (e) { return CW.dateTime(e.ts); } },
          { label: "event.kind", render: function (e) { return el("b", { text: eventLabel(e.kind) }); } },
          { label: "event.where", render: function (e) { return e.site_name ? e.site_name + " (" + e.site_code + ")" : (e.device_id || "—"); } },
          { label: "event.operator", render: function (e) { return CW.text(e.operator); } },
          { label: "event.details", render: describe }
        ], items, function (e) { return { dataset: { kind: e.kind } }; }));
      }
      CW.pager(document.getElementById("traj-pager"), env, loadTrajectory);
      renderTrack(items);
    }).catch(function (err) { CW.errorState(box, err); });
  }

  CW.api("/api/v1/cylinders/" + id).then(function (c) {
    renderArchive(c);
    document.getElementById("cylinder-more").hidden = false;
    return loadTrajectory(1);
  }).catch(function (err) {
    if (err.status === 404) {
      CW.clear(root);
      root.appendChild(el("section", { class: "empty-state empty-state-page" },
        el("div", { class: "empty-icon", "aria-hidden": "true", text: "?" }),
        el("h1", { text: t("cylinder.not_found") }),
        el("p", { text: t("cylinder.not_found_hint") }),
        el("p", {}, el("a", { class: "btn btn-primary", href: "/cylinders", text: t("cylinder.back") }))));
    } else CW.errorState(root, err);
  });
})();
