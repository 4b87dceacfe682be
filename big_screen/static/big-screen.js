/* CylinderWatch command-centre wall (/big-screen).
 *
 * Runs unattended for days, so three rules shape this file:
 * 1. It never reloads itself. The websocket reconnects with jittered exponential backoff
 *    after a server restart or a network cut, re-subscribes, and re-reads the feeds to fill
 *    what it missed. A dead link that never reports closing is caught by the ping watchdog.
 * 2. Memory stays flat: the ticker, the alert markers and the vehicle markers are capped
 *    Maps/DOM lists with eviction; listeners are attached once (the socket's handlers are
 *    detached when it dies); there is exactly one interval per periodic job.
 * 3. Authentication survives session expiry: a kiosk wall (?kiosk=) trades its token for a
 *    read-only session and trades again on any 401; a wall on a person's session keeps
 *    retrying (it recovers as soon as that browser logs in again).
 * window.__bs exposes counters for tests and for a technician's console.
 */
(function () {
  'use strict';

  var cfg = JSON.parse(document.getElementById('bs-config').textContent);
  var W = cfg.wall;
  var S = cfg.strings;
  function t(key) { return Object.prototype.hasOwnProperty.call(S, key) ? S[key] : key; }

  var state = window.__bs = {
    loadedAt: Date.now(),
    ws: { state: 'connecting', opens: 0, closes: 0, frames: 0, lastClose: null, subscribed: 0 },
    events: { alerts: 0, positions: 0, kpis: 0 },
    charts: { loads: 0, errors: 0, generated_at: null },
    kpis: {},
    lastAlert: null,
    counts: function () {
      return {
        tickerRows: ticker.el.children.length,
        tickerIds: ticker.byId.size,
        alertMarkers: alertMarkers.size,
        vehicles: vehicles.size,
        domNodes: document.getElementsByTagName('*').length
      };
    }
  };

  // ------------------------------------------------------------------ auth
  var kioskToken = new URLSearchParams(location.search).get('kiosk');
  var sessionToken = null; // the read-only kiosk session (bearer and /ws?token=)

  function AuthError(status) { this.status = status; }

  function mint() {
    return fetch('/big-screen/session', {
      method: 'POST', credentials: 'omit', cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ kiosk: kioskToken })
    }).then(function (r) {
      if (!r.ok) { throw new AuthError(r.status); }
      return r.json();
    }).then(function (body) { sessionToken = body.token; });
  }

  /* GET a JSON feed; a kiosk wall re-mints its session once on 401 and retries. */
  function api(path, retried) {
    var ready = (kioskToken && !sessionToken) ? mint() : Promise.resolve();
    return ready.then(function () {
      var opts = { cache: 'no-store', credentials: sessionToken ? 'omit' : 'same-origin',
                   headers: { Accept: 'application/json' } };
      if (sessionToken) { opts.headers.Authorization = 'Bearer ' + sessionToken; }
      return fetch(path, opts);
    }).then(function (r) {
      if (r.status === 401) {
        if (kioskToken && !retried) { sessionToken = null; return api(path, true); }
        throw new AuthError(401);
      }
      if (!r.ok) { throw new Error(path + ': HTTP ' + r.status); }
      return r.json();
    });
  }

  // ------------------------------------------------------------------ connection indicator
  var connEl = document.getElementById('conn');
  var connText = document.getElementById('conn-text');
  function setConn(s, extra) {
    state.ws.state = s;
    connEl.setAttribute('data-state', s);
    connText.textContent = t('conn.' + s) + (extra || '');
  }

  // ------------------------------------------------------------------ clock
  var clockEl = document.getElementById('clock');
  var dateEl = document.getElementById('clock-date');
  var tz = cfg.timezone;
  var fmtTime = new Intl.DateTimeFormat(cfg.lang, { timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  var fmtDate = new Intl.DateTimeFormat(cfg.lang, { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short' });
  var fmtShort = new Intl.DateTimeFormat(cfg.lang, { timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  function tick() {
    var now = new Date();
    clockEl.textContent = fmtTime.format(now);
    dateEl.textContent = fmtDate.format(now);
  }
  tick();
  setInterval(tick, 1000);

  // ------------------------------------------------------------------ KPI tiles
  var KPI_KEYS = ['registered', 'in_service', 'inspection_due', 'overdue', 'scrapped',
                  'fills_today', 'denials_today', 'open_alerts'];
  var KPI_ALIASES = { // names another producer may use for the same figure
    cylinders: 'registered', cylinders_registered: 'registered', total: 'registered',
    cylinders_in_service: 'in_service', due: 'inspection_due', overdue_inspection: 'overdue',
    fills: 'fills_today', denials: 'denials_today', alerts_open: 'open_alerts', alerts: 'open_alerts'
  };
  var kpiEls = {};
  KPI_KEYS.forEach(function (k) {
    var tile = document.querySelector('[data-kpi="' + k + '"]');
    kpiEls[k] = { tile: tile, value: tile.querySelector('b') };
  });
  var numFmt = new Intl.NumberFormat(cfg.lang);

  function applyKpis(obj) {
    if (!obj || typeof obj !== 'object') { return; }
    if (Array.isArray(obj)) { obj.forEach(applyKpis); return; }
    Object.keys(obj).forEach(function (raw) {
      var v = obj[raw];
      if (v && typeof v === 'object') { applyKpis(v); return; }
      var k = kpiEls[raw] ? raw : KPI_ALIASES[raw];
      if (!k || typeof v !== 'number' || !isFinite(v)) { return; }
      if (state.kpis[k] !== v) {
        var el = kpiEls[k];
        el.value.textContent = numFmt.format(v);
        if (state.kpis[k] !== undefined) {
          el.tile.classList.remove('flash');
          void el.tile.offsetWidth; // restart the animation
          el.tile.classList.add('flash');
        }
        state.kpis[k] = v;
      }
    });
  }

  // ------------------------------------------------------------------ map
  var toDisplay = function (lat, lon) { return [lat, lon]; };
  if (cfg.map.tiles && cfg.map.tiles.gcj02) {
    // the dashboard's port of dashboard/coords.py (static/js/coords.js), loaded for AMap only
    if (window.CWCoords) { toDisplay = window.CWCoords.wgs84ToGcj02; }
  }

  var map = L.map('map', {
    preferCanvas: true, zoomControl: false, attributionControl: !!cfg.map.tiles,
    dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false,
    keyboard: false, touchZoom: false, tap: false, fadeAnimation: false, zoomSnap: 0.1
  }).setView(toDisplay(cfg.map.center[0], cfg.map.center[1]), cfg.map.zoom);
  if (cfg.map.tiles) {
    var tileOpts = { maxZoom: cfg.map.tiles.max_zoom, attribution: cfg.map.tiles.attribution };
    if (cfg.map.tiles.subdomains) { tileOpts.subdomains = cfg.map.tiles.subdomains; }
    L.tileLayer(cfg.map.tiles.url, tileOpts).addTo(map);
    if (cfg.map.tiles.overlay_url) { L.tileLayer(cfg.map.tiles.overlay_url, tileOpts).addTo(map); }
  }
  var canvas = L.canvas({ padding: 0.2 });
  var districtLayer = null;
  var labelLayer = L.layerGroup().addTo(map);

  function projectRing(ring) {
    return ring.map(function (p) { var d = toDisplay(p[1], p[0]); return [d[1], d[0]]; });
  }
  function projectGeometry(g) {
    if (g.type === 'Polygon') { return { type: g.type, coordinates: g.coordinates.map(projectRing) }; }
    if (g.type === 'MultiPolygon') {
      return { type: g.type, coordinates: g.coordinates.map(function (p) { return p.map(projectRing); }) };
    }
    return g;
  }

  function drawDistricts(fc) {
    if (districtLayer) { map.removeLayer(districtLayer); }
    labelLayer.clearLayers();
    var features = (fc.features || []).map(function (f) {
      return { type: 'Feature', properties: f.properties, geometry: projectGeometry(f.geometry) };
    });
    districtLayer = L.geoJSON({ type: 'FeatureCollection', features: features }, {
      renderer: canvas, interactive: false,
      style: function () {
        return { color: '#38bdf8', weight: 1.6, opacity: 0.9, fillColor: '#0ea5e9', fillOpacity: 0.07 };
      }
    }).addTo(map);
    districtLayer.eachLayer(function (layer) {
      var p = layer.feature.properties;
      var name = (cfg.lang === 'en' && p.name_en) ? p.name_en : p.name;
      var label = L.divIcon({ className: 'bs-district-label', html: '', iconSize: null });
      var m = L.marker(layer.getBounds().getCenter(), { icon: label, interactive: false, keyboard: false });
      m.addTo(labelLayer);
      m.getElement().textContent = name;
    });
    var b = districtLayer.getBounds();
    if (b.isValid()) { map.fitBounds(b, { padding: [20, 20] }); }
  }

  // vehicles: id -> {marker, at}; Map order is recency (deleted and re-set on update)
  var vehicles = new Map();
  var nVehicles = document.getElementById('n-vehicles');
  function upsertVehicle(p) {
    if (typeof p.lat !== 'number' || typeof p.lon !== 'number') { return; }
    var id = String(p.id);
    var ll = toDisplay(p.lat, p.lon);
    var v = vehicles.get(id);
    if (v) {
      v.marker.setLatLng(ll);
      vehicles.delete(id);
    } else {
      v = { marker: L.circleMarker(ll, {
        renderer: canvas, interactive: false, radius: 4.5, weight: 1.5,
        color: '#a5f3fc', fillColor: '#22d3ee', fillOpacity: 0.95
      }).addTo(map) };
      while (vehicles.size >= W.vehicles_max) { evictOldest(vehicles); }
    }
    v.at = Date.now();
    vehicles.set(id, v);
    nVehicles.textContent = vehicles.size;
  }
  function evictOldest(m) {
    var first = m.keys().next();
    if (first.done) { return; }
    var entry = m.get(first.value);
    map.removeLayer(entry.marker);
    m.delete(first.value);
  }

  // alert markers: id -> {marker, at}
  var alertMarkers = new Map();
  var nAlerts = document.getElementById('n-alerts');
  function upsertAlertMarker(a) {
    if (typeof a.lat !== 'number' || typeof a.lon !== 'number') { return; }
    var id = String(a.id);
    var old = alertMarkers.get(id);
    if (old) { map.removeLayer(old.marker); alertMarkers.delete(id); }
    if (a.state === 'resolved') { nAlerts.textContent = alertMarkers.size; return; }
    while (alertMarkers.size >= W.alert_markers_max) { evictOldest(alertMarkers); }
    var icon = L.divIcon({ className: 'bs-pulse sev-' + (a.severity || 'warning'), html: '<i></i>', iconSize: null });
    var marker = L.marker(toDisplay(a.lat, a.lon), { icon: icon, interactive: false, keyboard: false }).addTo(map);
    alertMarkers.set(id, { marker: marker, at: Date.now() });
    nAlerts.textContent = alertMarkers.size;
  }

  function sweep() {
    var now = Date.now();
    var vStale = W.vehicle_stale_s * 1000;
    vehicles.forEach(function (v, id) {
      if (now - v.at > vStale) { map.removeLayer(v.marker); vehicles.delete(id); }
    });
    var aStale = W.alert_marker_ttl_s * 1000;
    alertMarkers.forEach(function (a, id) {
      if (now - a.at > aStale) { map.removeLayer(a.marker); alertMarkers.delete(id); }
    });
    nVehicles.textContent = vehicles.size;
    nAlerts.textContent = alertMarkers.size;
  }
  setInterval(sweep, 30000);

  // ------------------------------------------------------------------ alert ticker
  var ticker = { el: document.getElementById('ticker'), byId: new Map(), empty: null };
  function showEmpty() {
    if (ticker.el.children.length === 0) {
      var li = document.createElement('li');
      li.className = 't-empty';
      li.textContent = t('no_alerts');
      ticker.el.appendChild(li);
      ticker.empty = li;
    }
  }
  function alertTime(a) {
    var raw = a.last_at || a.first_at || a.ts;
    var d = raw ? new Date(typeof raw === 'number' ? raw : String(raw)) : new Date();
    return isNaN(d.getTime()) ? new Date() : d;
  }
  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }
  function districtName(code) {
    return districtNames.get(code) || code || '';
  }
  var districtNames = new Map();

  function pushTicker(a) {
    var id = a.id !== undefined && a.id !== null ? String(a.id) : null;
    if (ticker.empty) { ticker.empty.remove(); ticker.empty = null; }
    var old = id ? ticker.byId.get(id) : null;
    if (old) { old.remove(); ticker.byId.delete(id); }
    if (a.state === 'resolved') { showEmpty(); return; }
    var sev = a.severity || 'warning';
    var li = document.createElement('li');
    li.className = 'sev-' + sev;
    if (id) { li.dataset.id = id; }
    li.appendChild(span('t-sev', t('severity.' + sev)));
    var kind = span('t-kind', t('kind.' + a.kind));
    if (a.count > 1) { kind.appendChild(span('t-count', '×' + a.count)); }
    li.appendChild(kind);
    li.appendChild(span('t-time', fmtShort.format(alertTime(a))));
    var where = [districtName(a.district || a.district_code), a.company_name || '',
                 a.subject_id ? String(a.subject_id) : ''].filter(Boolean).join(' · ');
    li.appendChild(span('t-where', where));
    ticker.el.insertBefore(li, ticker.el.firstChild);
    if (id) { ticker.byId.set(id, li); }
    while (ticker.el.children.length > W.ticker_max) {
      var last = ticker.el.lastElementChild;
      if (last.dataset.id) { ticker.byId.delete(last.dataset.id); }
      last.remove();
    }
  }

  function onAlert(a, live) {
    if (!a || typeof a !== 'object') { return; }
    if (live) { state.events.alerts += 1; state.lastAlert = a; }
    pushTicker(a);
    upsertAlertMarker(a);
  }

  // ------------------------------------------------------------------ charts (echarts)
  var charts = {
    fills: echarts.init(document.getElementById('chart-fills'), null, { renderer: 'canvas' }),
    denials: echarts.init(document.getElementById('chart-denials'), null, { renderer: 'canvas' }),
    districts: echarts.init(document.getElementById('chart-districts'), null, { renderer: 'canvas' }),
    companies: echarts.init(document.getElementById('chart-companies'), null, { renderer: 'canvas' })
  };
  var lastCharts = null;
  function rem() { return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16; }
  var PALETTE = ['#22d3ee', '#fbbf24', '#f87171', '#a78bfa', '#34d399', '#60a5fa', '#fb923c'];

  function axisStyle(r) {
    return {
      axisLine: { lineStyle: { color: 'rgba(125,211,252,0.35)' } },
      axisTick: { show: false },
      axisLabel: { color: '#93c5fd', fontSize: 0.78 * r },
      splitLine: { lineStyle: { color: 'rgba(56,189,248,0.10)' } }
    };
  }
  function grid(r, left) {
    return { left: (left || 2.6) * r, right: 1 * r, top: 1.8 * r, bottom: 1.6 * r };
  }
  function emptyGraphic(r, isEmpty) {
    return isEmpty ? [{ type: 'text', left: 'center', top: 'middle',
      style: { text: t('empty'), fill: '#64748b', fontSize: 0.95 * r } }] : [];
  }

  function drawCharts(d) {
    var r = rem();
    var ax = axisStyle(r);
    var hours = []; for (var h = 0; h < 24; h++) { hours.push((h < 10 ? '0' : '') + h); }
    charts.fills.setOption({
      animationDuration: 600,
      grid: grid(r),
      tooltip: { show: false },
      xAxis: Object.assign({ type: 'category', data: hours, boundaryGap: true }, ax, { splitLine: { show: false } }),
      yAxis: Object.assign({ type: 'value', minInterval: 1 }, ax),
      series: [{
        type: 'bar', name: t('series.fills'), data: d.fills_per_hour, barWidth: '55%',
        itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [
          { offset: 0, color: '#67e8f9' }, { offset: 1, color: 'rgba(14,116,144,0.25)' }]) }
      }, {
        type: 'line', data: d.fills_per_hour, smooth: true, symbol: 'none',
        lineStyle: { color: '#fbbf24', width: 0.12 * r }
      }]
    }, true);

    var denials = d.denials_by_reason.map(function (x) { return { name: t('reason.' + x.reason), value: x.count }; });
    charts.denials.setOption({
      color: PALETTE,
      graphic: emptyGraphic(r, denials.length === 0),
      legend: { orient: 'vertical', right: 0.2 * r, top: 'middle', itemWidth: 0.7 * r, itemHeight: 0.7 * r,
                textStyle: { color: '#bfdbfe', fontSize: 0.8 * r } },
      series: [{
        type: 'pie', radius: ['38%', '70%'], center: ['32%', '52%'], roseType: 'radius',
        itemStyle: { borderColor: '#030b1a', borderWidth: 0.12 * r },
        label: { color: '#e0f2fe', fontSize: 0.78 * r, formatter: '{c}' },
        labelLine: { length: 0.4 * r, length2: 0.4 * r },
        data: denials
      }]
    }, true);

    var dn = d.inspection_by_district;
    charts.districts.setOption({
      color: ['#fbbf24', '#f87171'],
      graphic: emptyGraphic(r, dn.length === 0),
      legend: { top: 0, right: 0, itemWidth: 0.8 * r, itemHeight: 0.55 * r,
                textStyle: { color: '#bfdbfe', fontSize: 0.78 * r } },
      grid: grid(r),
      xAxis: Object.assign({ type: 'category', data: dn.map(function (x) {
        var n = (cfg.lang === 'en' && x.name_en) ? x.name_en : (x.name || x.district);
        return n.length > 5 ? n.slice(0, 4) + '…' : n;
      }) }, ax, { splitLine: { show: false } }),
      yAxis: Object.assign({ type: 'value', minInterval: 1 }, ax),
      series: [
        { type: 'bar', name: t('series.inspection_due'), data: dn.map(function (x) { return x.inspection_due; }), barGap: '10%' },
        { type: 'bar', name: t('series.overdue'), data: dn.map(function (x) { return x.overdue; }) }
      ]
    }, true);

    var comp = d.companies_by_anomalies.slice().reverse();
    charts.companies.setOption({
      graphic: emptyGraphic(r, comp.length === 0),
      grid: { left: 0.5 * r, right: 2.8 * r, top: 0.4 * r, bottom: 0.4 * r, containLabel: true },
      xAxis: Object.assign({ type: 'value', minInterval: 1 }, ax, { axisLabel: { show: false } }),
      yAxis: Object.assign({ type: 'category', data: comp.map(function (x) { return x.name; }) }, ax,
                           { axisLabel: { color: '#dbeafe', fontSize: 0.8 * r, width: 11 * r, overflow: 'truncate' } }),
      series: [{
        type: 'bar', name: t('series.anomalies'), data: comp.map(function (x) { return x.count; }),
        barWidth: '52%',
        label: { show: true, position: 'right', color: '#fde68a', fontSize: 0.8 * r },
        itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 1, 0, [
          { offset: 0, color: 'rgba(248,113,113,0.25)' }, { offset: 1, color: '#f87171' }]) }
      }]
    }, true);
  }

  var updatedEl = document.getElementById('updated');
  function loadCharts() {
    return api('/big-screen/data/charts').then(function (d) {
      state.charts.loads += 1;
      state.charts.generated_at = d.generated_at;
      lastCharts = d;
      applyKpis(d.kpis);
      drawCharts(d);
      updatedEl.textContent = t('updated') + ' ' + fmtShort.format(new Date());
    }).catch(function (e) {
      state.charts.errors += 1;
      if (e instanceof AuthError) { setConn('auth'); }
    });
  }

  function loadAlerts() {
    return api('/big-screen/data/alerts').then(function (d) {
      // oldest first so the newest ends on top
      d.items.slice().reverse().forEach(function (a) { onAlert(a, false); });
      showEmpty();
    }).catch(function () { showEmpty(); });
  }

  function loadStatic() {
    return api('/big-screen/data/districts').then(function (fc) {
      (fc.features || []).forEach(function (f) {
        var p = f.properties;
        districtNames.set(p.code, (cfg.lang === 'en' && p.name_en) ? p.name_en : p.name);
      });
      drawDistricts(fc);
    }).catch(function () { /* the map stays usable without boundaries */ });
  }

  function loadVehicles() {
    return api('/big-screen/data/vehicles').then(function (d) {
      d.items.forEach(upsertVehicle);
    }).catch(function () {});
  }

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      map.invalidateSize();
      Object.keys(charts).forEach(function (k) { charts[k].resize(); });
      if (lastCharts) { drawCharts(lastCharts); }
    }, 200);
  });

  // ------------------------------------------------------------------ websocket
  var ws = { sock: null, nextId: 1, subs: {}, backoff: W.reconnect_min_s, timer: null, lastRx: 0, everOpened: false };

  function wsUrl() {
    var u = new URL('/ws', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (sessionToken) { u.searchParams.set('token', sessionToken); }
    return u.href;
  }

  function send(msg) {
    if (ws.sock && ws.sock.readyState === WebSocket.OPEN) {
      msg.id = ws.nextId++;
      ws.sock.send(JSON.stringify(msg));
      return msg.id;
    }
    return null;
  }

  function subscribe(channel) {
    var id = send({ type: 'subscribe', channel: channel, filter: {} });
    if (id !== null) { ws.subs[id] = channel; }
  }

  function scheduleReconnect() {
    if (ws.timer) { return; }
    var delay = Math.min(ws.backoff, W.reconnect_max_s);
    delay = delay * (0.75 + Math.random() * 0.5) * 1000;
    ws.backoff = Math.min(ws.backoff * 2, W.reconnect_max_s);
    setConn(ws.everOpened ? 'reconnecting' : 'connecting', ' ' + Math.ceil(delay / 1000) + 's');
    ws.timer = setTimeout(function () { ws.timer = null; connect(); }, delay);
  }

  function drop(sock) {
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    if (ws.sock === sock) { ws.sock = null; }
  }

  var authSuspect = false;
  function connect() {
    // A socket that died before opening may have been refused for an expired session:
    // the browser hides the HTTP status of a failed upgrade, so ask a feed (which re-mints).
    var pre = Promise.resolve();
    if (kioskToken && (!sessionToken || authSuspect)) {
      pre = authSuspect ? api('/api/v1/auth/me') : mint();
    }
    pre.then(open, function (e) {
      if (e instanceof AuthError) { setConn('auth'); }
      scheduleReconnect();
    });
  }

  function open() {
    var sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws.sock = sock;
    var opened = false;
    sock.onopen = function () {
      opened = true;
      authSuspect = false;
      ws.everOpened = true;
      state.ws.opens += 1;
      ws.lastRx = Date.now();
      ws.nextId = 1;
      ws.subs = {};
      state.ws.subscribed = 0;  // confirmed by the server's result, not just sent
      ws.backoff = W.reconnect_min_s;
      subscribe('alerts');
      subscribe('positions');
      subscribe('kpis');
      setConn('live');
      if (state.ws.opens > 1) { resync(); }
    };
    sock.onmessage = function (m) {
      ws.lastRx = Date.now();
      state.ws.frames += 1;
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      state.ws.closes += 1;
      state.ws.lastClose = ev.code;
      drop(sock);
      if (!opened || ev.code === 1008 || ev.code === 4001 || ev.code === 4401 || ev.code === 4403) {
        authSuspect = true;
      }
      scheduleReconnect();
    };
    sock.onerror = function () { /* a close event follows */ };
  }

  function handle(msg) {
    if (msg.type === 'event') {
      var channel = msg.channel || ws.subs[msg.id];
      var rows = Array.isArray(msg.data) ? msg.data : [msg.data];
      if (channel === 'alerts') {
        rows.forEach(function (a) { onAlert(a, true); });
      } else if (channel === 'positions') {
        state.events.positions += rows.length;
        rows.forEach(function (p) { if (p && (p.kind === 'vehicle' || p.kind === undefined)) { upsertVehicle(p); } });
      } else if (channel === 'kpis') {
        state.events.kpis += 1;
        rows.forEach(applyKpis);
      }
    } else if (msg.type === 'result' && msg.success === true && ws.subs[msg.id]) {
      state.ws.subscribed += 1;
    } else if (msg.type === 'result' && msg.success === false) {
      var ch = ws.subs[msg.id];
      if (ch) { delete ws.subs[msg.id]; }
      if (msg.error && (msg.error.code === 'unauthorized' || msg.error.code === 'forbidden')) {
        authSuspect = true;
        if (ws.sock) { ws.sock.close(); }
      }
    }
  }

  // Watchdog: a half-open TCP link (cable pulled, NAT timeout) may never fire onclose.
  setInterval(function () {
    var s = ws.sock;
    if (!s || s.readyState !== WebSocket.OPEN) { return; }
    if (Date.now() - ws.lastRx > 2.5 * W.ping_s * 1000) {
      drop(s);
      try { s.close(); } catch (e) { /* already gone */ }
      state.ws.closes += 1;
      scheduleReconnect();
      return;
    }
    send({ type: 'ping' });
  }, W.ping_s * 1000);

  function resync() {
    loadAlerts();
    loadCharts();
  }

  // ------------------------------------------------------------------ start
  setConn('connecting');
  var boot = kioskToken ? mint().catch(function () { setConn('auth'); }) : Promise.resolve();
  boot.then(function () {
    connect();
    loadStatic().then(loadVehicles);
    loadAlerts();
    loadCharts();
  });
  setInterval(loadCharts, W.chart_refresh_s * 1000);
})();
