/* CylinderWatch officer PWA service worker (scope /m).
 *
 * - Offline start: the shell (/m, script, stylesheet, manifest, icons) is cached at install;
 *   navigations try the network first (a fresh shell in the right language) and fall back
 *   to the cached one. API calls and /ws are never cached: stale alerts would mislead.
 * - Web Push: the server pushes a JSON alert; we show a notification (one per alert id, so
 *   a repeat replaces rather than stacks) and, on click, focus an open /m or open one.
 * The cache name carries the shell version (filled in by the server), so a deploy replaces
 * the offline copy and old caches are deleted on activate.
 */
'use strict';
var VERSION = '__VERSION__';
var CACHE = 'cylwatch-m-' + VERSION;
var SHELL = ['/m', '/m/manifest.webmanifest', '/static/m/m.js?v=' + VERSION, '/static/m/m.css?v=' + VERSION,
             '/static/m/icons/icon-192.png', '/static/m/icons/icon-512.png'];

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(SHELL.map(function (u) { return new Request(u, { credentials: 'same-origin', cache: 'reload' }); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf('cylwatch-m-') === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') { return; }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) { return; }
  if (req.mode === 'navigate' && (url.pathname === '/m' || url.pathname === '/m/')) {
    event.respondWith(fetch(req).then(function (resp) {
      if (resp.ok) {
        var copy = resp.clone();
        caches.open(CACHE).then(function (c) { c.put('/m', copy); });
      }
      return resp;
    }).catch(function () {
      return caches.match('/m');
    }));
    return;
  }
  if (url.pathname.indexOf('/static/m/') === 0 || url.pathname === '/m/manifest.webmanifest') {
    event.respondWith(caches.match(req).then(function (hit) { return hit || fetch(req); }));
  }
});

self.addEventListener('push', function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : '' }; }
  var alert = data.alert || data;
  var title = data.title || alert.title || ('CylinderWatch · ' + (alert.kind || 'alert'));
  var body = data.body || [alert.severity, alert.subject_id, alert.district, alert.company_name]
    .filter(Boolean).join(' · ');
  event.waitUntil(self.registration.showNotification(title, {
    body: body,
    tag: data.tag || (alert.id !== undefined ? 'alert-' + alert.id : undefined),
    renotify: alert.id !== undefined,
    icon: '/static/m/icons/icon-192.png',
    badge: '/static/m/icons/icon-192.png',
    data: { url: data.url || '/m' }
  }));
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  var target = (event.notification.data && event.notification.data.url) || '/m';
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (wins) {
    for (var i = 0; i < wins.length; i++) {
      var u = new URL(wins[i].url);
      if (u.pathname === '/m' || u.pathname.indexOf('/m/') === 0) { return wins[i].focus(); }
    }
    return self.clients.openWindow(target);
  }));
});
