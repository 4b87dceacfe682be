// @ts-check
/* CylinderWatch officer PWA service worker (scope /m).

   - Offline start: the shell — /m, its scripts and stylesheet, the platform's shared browser
     modules it imports (/static/js/lib/), Leaflet (the lookup's small map), manifest and
     icons — is cached at install;
     navigations try the network first (a fresh shell in the right language) and fall back
     to the cached one. API calls and /ws are never cached: stale alerts would mislead.
   - Web Push: the server pushes a JSON alert; we show a notification (one per alert id, so
     a repeat replaces rather than stacks) and, on click, focus an open /m or open one.
   The server fills in the shell version and the list of shell URLs (dashboard/mobile.py),
   so a deploy replaces the offline copy and old caches are deleted on activate. */
"use strict";
const VERSION = "__VERSION__";
const CACHE = "cylwatch-m-" + VERSION;
/** @type {string[]} */
const SHELL = JSON.parse('__SHELL__');
const CACHED_PREFIXES = ["/static/m/", "/static/js/lib/", "/static/vendor/leaflet/"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { credentials: "same-origin", cache: "reload" }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("cylwatch-m-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate" && (url.pathname === "/m" || url.pathname === "/m/")) {
    event.respondWith(fetch(req).then((resp) => {
      if (resp.ok) {
        const copy = resp.clone();
        caches.open(CACHE).then((c) => c.put("/m", copy));
      }
      return resp;
    }).catch(() => caches.match("/m")));
    return;
  }
  if (CACHED_PREFIXES.some((p) => url.pathname.startsWith(p)) || url.pathname === "/m/manifest.webmanifest") {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
  }
});

self.addEventListener("push", (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const alert = data.alert || data;
  const title = data.title || alert.title || ("CylinderWatch · " + (alert.kind || "alert"));
  const body = data.body || [alert.severity, alert.subject_id, alert.district, alert.company_name].filter(Boolean).join(" · ");
  event.waitUntil(self.registration.showNotification(title, {
    body,
    tag: data.tag || (alert.id !== undefined ? "alert-" + alert.id : undefined),
    renotify: alert.id !== undefined,
    icon: "/static/m/icons/icon-192.png",
    badge: "/static/m/icons/icon-192.png",
    data: { url: data.url || "/m" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || "/m";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((wins) => {
    for (const w of wins) {
      const u = new URL(w.url);
      if (u.pathname === "/m" || u.pathname.startsWith("/m/")) return w.focus();
    }
    return self.clients.openWindow(target);
  }));
});
