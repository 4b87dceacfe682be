/* CylinderWatch officer PWA (/m).
 *
 * The page is a cached shell: it asks the server who is logged in, then shows either the
 * login form or the app. Live alerts arrive on /ws (the server scopes them to the officer's
 * districts); acknowledge/resolve and logout are cookie-authenticated POSTs, so they carry
 * the CSRF token from the readable CSRF cookie in X-CSRF-Token. The socket reconnects with
 * backoff and the list is re-read after each reconnect, so nothing missed while a phone was
 * in a lift stays missing. window.__m exposes counters for tests.
 */
(function () {
  'use strict';

  var cfg = JSON.parse(document.getElementById('m-config').textContent);
  var S = cfg.strings;
  function t(key, vars) {
    var s = Object.prototype.hasOwnProperty.call(S, key) ? S[key] : key;
    if (vars) { Object.keys(vars).forEach(function (k) { s = s.replace('{' + k + '}', vars[k]); }); }
    return s;
  }
  var MAX_ALERTS = 100;
  var state = window.__m = { user: null, wsOpens: 0, alertEvents: 0, lastAlert: null, sw: null, actions: 0 };
  var $ = function (id) { return document.getElementById(id); };

  function csrf() {
    var m = document.cookie.match(new RegExp('(?:^|; )' + cfg.csrf_cookie + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : '';
  }
  function req(method, path, body) {
    var opts = { method: method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (method !== 'GET') { opts.headers['X-CSRF-Token'] = csrf(); }
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
        if (!r.ok) { var err = new Error(path + ' ' + r.status); err.status = r.status; err.body = data; throw err; }
        return data;
      });
    });
  }

  var fmtTime = new Intl.DateTimeFormat(cfg.lang, { timeZone: cfg.timezone, month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hour12: false });
  function when(raw) {
    if (!raw) { return ''; }
    var d = new Date(raw);
    return isNaN(d.getTime()) ? String(raw) : fmtTime.format(d);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  // ------------------------------------------------------------------ service worker
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/m/sw.js', { scope: cfg.scope }).then(function (reg) {
      state.sw = 'registered';
      return navigator.serviceWorker.ready.then(function () { state.sw = 'ready'; refreshPush(); });
    }).catch(function (e) { state.sw = 'failed: ' + e; });
  }

  function setOffline(off) { $('m-offline').hidden = !off; }
  window.addEventListener('online', function () { setOffline(false); });
  window.addEventListener('offline', function () { setOffline(true); });

  // ------------------------------------------------------------------ views
  function show(view) {
    $('view-login').hidden = view !== 'login';
    $('view-app').hidden = view !== 'app';
  }
  document.querySelectorAll('.m-tabs button').forEach(function (b) {
    b.addEventListener('click', function () { selectTab(b.dataset.tab); });
  });
  function selectTab(name) {
    document.querySelectorAll('.m-tabs button').forEach(function (b) {
      b.classList.toggle('active', b.dataset.tab === name);
    });
    ['alerts', 'lookup', 'settings'].forEach(function (n) { $('tab-' + n).hidden = n !== name; });
    if (name !== 'lookup') { stopScan(); }
  }

  function boot() {
    // no CSRF cookie: no session either (they are set together), so do not ask
    if (!csrf() && navigator.onLine) { show('login'); return; }
    req('GET', '/api/v1/auth/me').then(function (body) {
      setOffline(false);
      startApp(body.user);
    }).catch(function (e) {
      if (e.status === 401 || e.status === 403) { show('login'); return; }
      setOffline(true);
      setTimeout(boot, 5000);
    });
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('login-error').textContent = '';
    fetch('/api/v1/auth/login', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: $('login-username').value, password: $('login-password').value })
    }).then(function (r) {
      if (!r.ok) { throw new Error('login'); }
      $('login-password').value = '';
      boot();
    }).catch(function () {
      $('login-error').textContent = navigator.onLine ? t('login.failed') : t('login.offline');
    });
  });

  $('logout-btn').addEventListener('click', function () {
    req('POST', '/api/v1/auth/logout').catch(function () {}).then(function () {
      stopSocket();
      state.user = null;
      alerts.forEach(function (a) { a.el.remove(); });
      alerts.clear();
      show('login');
    });
  });

  var started = false;
  function startApp(user) {
    state.user = user;
    $('me-name').textContent = (user.display_name || user.username) + ' (' + user.role + ')';
    $('me-districts').textContent = (user.districts || []).join(', ') || '—';
    show('app');
    if (!started) { started = true; selectTab('alerts'); }
    loadAlerts();
    connect();
  }

  // ------------------------------------------------------------------ alerts
  var alerts = new Map(); // id -> {data, el}
  var list = $('alerts');

  function updateEmpty() {
    $('alerts-empty').hidden = alerts.size > 0;
    var open = 0;
    alerts.forEach(function (a) { if (a.data.state === 'open') { open += 1; } });
    var badge = $('alerts-badge');
    badge.hidden = open === 0;
    badge.textContent = open;
  }

  function render(a, fresh) {
    var li = el('li', 'm-alert sev-' + (a.severity || 'warning') + (fresh ? ' fresh' : ''));
    li.dataset.id = a.id;
    var head = el('header');
    var h = el('h3');
    h.appendChild(el('span', 'sev', t('severity.' + (a.severity || 'warning'))));
    h.appendChild(document.createTextNode(t('kind.' + a.kind)));
    head.appendChild(h);
    head.appendChild(el('span', 'state', t('state.' + a.state)));
    li.appendChild(head);
    var meta = [a.site_name || a.company_name || '', a.subject_id || '', a.district || '',
                when(a.last_at), a.count > 1 ? t('alerts.count', { n: a.count }) : '']
      .filter(Boolean).join(' · ');
    li.appendChild(el('p', 'meta', meta));
    if (a.details && a.details.reasons) {
      li.appendChild(el('p', 'meta', [].concat(a.details.reasons).join(', ')));
    }
    var note = el('textarea');
    note.placeholder = t('alerts.note');
    note.maxLength = 2000;
    li.appendChild(note);
    var actions = el('div', 'actions');
    if (a.state === 'open') {
      var ack = el('button', 'm-btn', t('alerts.ack'));
      ack.type = 'button';
      ack.dataset.action = 'ack';
      actions.appendChild(ack);
    }
    var res = el('button', 'm-btn primary', t('alerts.resolve'));
    res.type = 'button';
    res.dataset.action = 'resolve';
    actions.appendChild(res);
    li.appendChild(actions);
    li.appendChild(el('p', 'm-error'));
    return li;
  }

  function upsert(a, fresh) {
    if (!a || a.id === undefined) { return; }
    var id = String(a.id);
    var old = alerts.get(id);
    if (old) {
      a = Object.assign({}, old.data, a); // a live row lacks the names the REST row carries
      // a note being typed survives a counter bump
      var typed = old.el.querySelector('textarea').value;
      var replaced = render(a, fresh);
      replaced.querySelector('textarea').value = typed;
      if (a.state === 'resolved') { old.el.remove(); alerts.delete(id); updateEmpty(); return; }
      list.replaceChild(replaced, old.el);
      if (fresh) { list.insertBefore(replaced, list.firstChild); }
      alerts.set(id, { data: a, el: replaced });
    } else {
      if (a.state === 'resolved') { return; }
      var li = render(a, fresh);
      if (fresh) { list.insertBefore(li, list.firstChild); } else { list.appendChild(li); }
      alerts.set(id, { data: a, el: li });
      while (alerts.size > MAX_ALERTS) {
        var last = list.lastElementChild;
        alerts.delete(last.dataset.id);
        last.remove();
      }
    }
    updateEmpty();
  }

  list.addEventListener('click', function (ev) {
    var btn = ev.target.closest('button[data-action]');
    if (!btn) { return; }
    var li = btn.closest('li');
    var id = li.dataset.id;
    var note = li.querySelector('textarea').value.trim();
    var action = btn.dataset.action;
    li.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
    req('POST', '/api/v1/alerts/' + encodeURIComponent(id) + '/' + action, note ? { note: note } : {})
      .then(function (body) {
        state.actions += 1;
        var updated = (body && body.alert) ? body.alert : body;
        var cur = alerts.get(id);
        var merged = Object.assign({}, cur ? cur.data : {}, updated || {},
                                   { state: action === 'ack' ? 'acknowledged' : 'resolved' });
        if (updated && updated.state) { merged.state = updated.state; }
        upsert(merged, false);
      }).catch(function (e) {
        var msg = (e.body && e.body.error && e.body.error.message) || t('alerts.failed');
        li.querySelector('.m-error').textContent = msg;
        li.querySelectorAll('button').forEach(function (b) { b.disabled = false; });
      });
  });

  function loadAlerts() {
    return Promise.all(['open', 'acknowledged'].map(function (s) {
      return req('GET', '/api/v1/alerts?state=' + s + '&page_size=' + MAX_ALERTS).then(function (b) {
        return b.items || [];
      });
    })).then(function (parts) {
      var items = parts[0].concat(parts[1]);
      items.sort(function (x, y) { return String(y.last_at).localeCompare(String(x.last_at)); });
      var seen = new Set(items.map(function (a) { return String(a.id); }));
      alerts.forEach(function (a, id) { if (!seen.has(id)) { a.el.remove(); alerts.delete(id); } });
      items.slice(0, MAX_ALERTS).forEach(function (a) {
        var cur = alerts.get(String(a.id));
        if (cur) { list.appendChild(cur.el); }
        upsert(a, false);
      });
      updateEmpty();
    }).catch(function (e) { if (e.status === 401) { show('login'); } });
  }

  // ------------------------------------------------------------------ websocket
  var ws = { sock: null, backoff: 0.5, timer: null, nextId: 1, wanted: false, lastRx: 0 };
  function setConn(s) { var c = $('m-conn'); c.dataset.state = s; c.textContent = t('conn.' + s); }
  setConn('connecting');

  function connect() {
    ws.wanted = true;
    if (ws.sock || ws.timer) { return; }
    var u = new URL('/ws', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var sock;
    try { sock = new WebSocket(u.href); } catch (e) { retry(); return; }
    ws.sock = sock;
    sock.onopen = function () {
      state.wsOpens += 1;
      ws.backoff = 0.5;
      ws.nextId = 1;
      ws.lastRx = Date.now();
      sock.send(JSON.stringify({ id: ws.nextId++, type: 'subscribe', channel: 'alerts', filter: {} }));
      setConn('live');
      if (state.wsOpens > 1) { loadAlerts(); }
    };
    sock.onmessage = function (m) {
      ws.lastRx = Date.now();
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === 'event' && msg.channel === 'alerts') {
        (Array.isArray(msg.data) ? msg.data : [msg.data]).forEach(function (a) {
          state.alertEvents += 1;
          state.lastAlert = a;
          upsert(a, true);
        });
      }
    };
    sock.onclose = function () {
      sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
      if (ws.sock === sock) { ws.sock = null; }
      setConn('offline');
      if (ws.wanted) { retry(); }
    };
    sock.onerror = function () {};
  }
  function retry() {
    if (ws.timer) { return; }
    var delay = Math.min(ws.backoff, 30) * (0.75 + Math.random() * 0.5) * 1000;
    ws.backoff = Math.min(ws.backoff * 2, 30);
    ws.timer = setTimeout(function () {
      ws.timer = null;
      // the session may have ended while we were away: ask before reconnecting
      req('GET', '/api/v1/auth/me').then(function () { connect(); }, function (e) {
        if (e.status === 401) { ws.wanted = false; show('login'); } else { retry(); }
      });
    }, delay);
  }
  function stopSocket() {
    ws.wanted = false;
    if (ws.timer) { clearTimeout(ws.timer); ws.timer = null; }
    if (ws.sock) { var s = ws.sock; ws.sock = null; s.onclose = null; s.close(); }
  }
  setInterval(function () {
    if (ws.sock && ws.sock.readyState === WebSocket.OPEN) {
      if (Date.now() - ws.lastRx > 60000) { ws.sock.close(); return; }
      ws.sock.send(JSON.stringify({ id: ws.nextId++, type: 'ping' }));
    }
  }, 25000);
  document.addEventListener('visibilitychange', function () {
    // phones freeze background tabs; on return, re-read what the socket may have missed
    if (document.visibilityState === 'visible' && state.user) {
      loadAlerts();
      if (!ws.sock) { connect(); }
    }
  });

  // ------------------------------------------------------------------ cylinder lookup
  var result = $('lookup-result');
  function field(dl, key, value) {
    if (value === null || value === undefined || value === '') { return; }
    dl.appendChild(el('dt', null, t('field.' + key)));
    var dd = el('dd');
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = value; }
    dl.appendChild(dd);
  }
  function showCylinder(c) {
    result.textContent = '';
    var card = el('div', 'm-card');
    card.id = 'cylinder-card';
    var h = el('h2', null, c.tag);
    card.appendChild(h);
    var dl = el('dl', 'm-dl');
    var badge = el('span', 'badge ' + c.compliance, t('compliance.' + c.compliance));
    badge.id = 'cylinder-compliance';
    field(dl, 'compliance', badge);
    field(dl, 'status', t('status.' + c.status));
    field(dl, 'stamp', c.stamp);
    field(dl, 'barcode', c.barcode);
    field(dl, 'owner', c.owner_name || c.owner_code);
    field(dl, 'spec', c.spec);
    field(dl, 'manufacture_date', c.manufacture_date);
    field(dl, 'last_inspection_date', c.last_inspection_date);
    field(dl, 'next_inspection_date', c.next_inspection_date);
    field(dl, 'scrap_date', c.scrap_date);
    var fill = c.last_fill_at ? when(c.last_fill_at) + (c.last_fill_site_name ? ' · ' + c.last_fill_site_name : '') : null;
    field(dl, 'last_fill', fill);
    field(dl, 'location', c.location_site_name || c.location_kind);
    field(dl, 'district', c.district_code);
    card.appendChild(dl);
    result.appendChild(card);
  }
  function lookup(code) {
    code = code.trim();
    if (!code) { return; }
    result.textContent = '';
    req('GET', '/api/v1/cylinders?q=' + encodeURIComponent(code) + '&page_size=20').then(function (b) {
      var items = b.items || [];
      var exact = items.filter(function (c) { return c.tag === code || c.barcode === code || c.stamp === code; });
      if (exact.length === 1) { items = exact; }
      if (items.length === 0) { result.appendChild(el('p', 'm-empty', t('lookup.not_found'))); return null; }
      if (items.length === 1) { return req('GET', '/api/v1/cylinders/' + items[0].id).then(showCylinder); }
      var card = el('div', 'm-card');
      card.appendChild(el('h2', null, t('lookup.many')));
      items.forEach(function (c) {
        var b2 = el('button', 'm-btn wide', c.tag + (c.stamp ? ' · ' + c.stamp : ''));
        b2.type = 'button';
        b2.addEventListener('click', function () { req('GET', '/api/v1/cylinders/' + c.id).then(showCylinder); });
        card.appendChild(b2);
      });
      result.appendChild(card);
      return null;
    }).catch(function (e) {
      result.appendChild(el('p', 'm-error', e.status === 404 ? t('lookup.not_found') : t('lookup.failed')));
    });
  }
  $('lookup-form').addEventListener('submit', function (ev) { ev.preventDefault(); lookup($('lookup-code').value); });

  // scanning: BarcodeDetector (Chromium on Android) reading the rear camera; else typing
  var scan = { stream: null, timer: null };
  var scanBtn = $('scan-btn');
  var video = $('scan-video');
  if ('BarcodeDetector' in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    scanBtn.hidden = false;
  }
  function stopScan() {
    if (scan.timer) { clearInterval(scan.timer); scan.timer = null; }
    if (scan.stream) { scan.stream.getTracks().forEach(function (tr) { tr.stop(); }); scan.stream = null; }
    video.hidden = true;
    scanBtn.textContent = t('lookup.scan');
  }
  scanBtn.addEventListener('click', function () {
    if (scan.stream) { stopScan(); return; }
    var detector;
    try { detector = new window.BarcodeDetector(); } catch (e) {
      result.textContent = t('lookup.no_camera'); return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } }).then(function (stream) {
      scan.stream = stream;
      video.srcObject = stream;
      video.hidden = false;
      scanBtn.textContent = t('lookup.scan_stop');
      return video.play().then(function () {
        scan.timer = setInterval(function () {
          detector.detect(video).then(function (codes) {
            if (codes.length && codes[0].rawValue) {
              var value = codes[0].rawValue.replace(/^.*\/q\//, ''); // a QR holding the public URL
              $('lookup-code').value = value;
              stopScan();
              lookup(value);
            }
          }).catch(function () {});
        }, 300);
      });
    }).catch(function () { stopScan(); result.textContent = t('lookup.no_camera'); });
  });

  // ------------------------------------------------------------------ Web Push
  var pushBtn = $('push-btn');
  var pushStatus = $('push-status');
  function pushSupported() { return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window; }
  function b64ToBytes(b64) {
    var s = b64.replace(/-/g, '+').replace(/_/g, '/');
    s += '===='.slice(0, (4 - s.length % 4) % 4);
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function currentSubscription() {
    return navigator.serviceWorker.ready.then(function (reg) { return reg.pushManager.getSubscription(); });
  }
  function refreshPush() {
    if (!pushSupported()) { pushStatus.textContent = t('push.unsupported'); pushBtn.disabled = true; return; }
    currentSubscription().then(function (sub) {
      pushStatus.textContent = sub ? t('push.on') : (Notification.permission === 'denied' ? t('push.denied') : t('push.off'));
      pushBtn.textContent = sub ? t('push.disable') : t('push.enable');
      pushBtn.dataset.on = sub ? '1' : '';
    }).catch(function () {});
  }
  pushBtn.addEventListener('click', function () {
    if (!pushSupported()) { return; }
    pushBtn.disabled = true;
    var done = function () { pushBtn.disabled = false; refreshPush(); };
    if (pushBtn.dataset.on) {
      currentSubscription().then(function (sub) {
        if (!sub) { return null; }
        return req('DELETE', '/api/v1/push/subscriptions', { endpoint: sub.endpoint })
          .catch(function () {}).then(function () { return sub.unsubscribe(); });
      }).then(done, done);
      return;
    }
    Notification.requestPermission().then(function (perm) {
      if (perm !== 'granted') { throw new Error('denied'); }
      return req('GET', '/api/v1/push/vapid-public-key');
    }).then(function (body) {
      var key = typeof body === 'string' ? body : (body.key || body.public_key || body.publicKey || body.vapid_public_key);
      return navigator.serviceWorker.ready.then(function (reg) {
        return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(key) });
      });
    }).then(function (sub) {
      return req('POST', '/api/v1/push/subscriptions', sub.toJSON());
    }).then(done).catch(function (e) {
      done();
      pushStatus.textContent = e && e.message === 'denied' ? t('push.denied') : t('push.failed');
    });
  });

  boot();
})();
