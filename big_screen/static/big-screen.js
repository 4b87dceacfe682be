// @ts-check
/* CylinderWatch command-centre wall (/big-screen).

   Runs unattended for days, so three rules shape this file and its modules:
   1. It never reloads itself. The platform's websocket client (lib/ws.js) reconnects with
      jittered exponential backoff after a server restart or a network cut, re-subscribes,
      and catches a dead link that never reports closing; after each reconnect the feeds
      are re-read to fill what was missed.
   2. Memory stays flat: the live state (wall-store.js) is capped Maps with eviction, each
      window lets go of what it holds when a layout switch destroys it, and there is exactly
      one interval per periodic job.
   3. Authentication survives session expiry: a kiosk wall (?kiosk=) trades its token for a
      read-only session and trades again on any 401; a wall on a person's session keeps
      retrying (it recovers as soon as that browser logs in again).
   What the wall shows is a layout (server/domain/wall.py): the page starts with the one its
   scope shows now (page config `layout`), and the `wall` channel brings every switch —
   from a desktop or a phone — within a second (wall-grid.js draws it).
   The shared modules come from the platform's static files (/static/js/lib/), never from a
   Python import of the dashboard. window.__bs exposes counters for tests and a technician. */
import { ApiError, api } from "/static/js/lib/api.js";
import { onResize } from "/static/js/lib/chart.js";
import { config } from "/static/js/lib/config.js";
import { byId } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { t } from "/static/js/lib/i18n.js";
import { LiveSocket } from "/static/js/lib/ws.js";
import { mountLayout } from "./wall-grid.js";
import { fmtTime } from "./wall-panels.js";
import { addAlert, applyKpis, setCharts, setDistricts, store, sweep, upsertVehicle } from "./wall-store.js";

const W = config.wall;
const SWEEP_MS = 30000;
const CLOCK_MS = 1000;

// ------------------------------------------------------------------ auth
const kioskToken = new URLSearchParams(location.search).get("kiosk");
/** @type {string | null} the read-only kiosk session (bearer and /ws?token=) */
let sessionToken = null;

async function mint() {
  const body = await api("/big-screen/session", { method: "POST", body: { kiosk: kioskToken }, anonymous: true });
  sessionToken = body.token;
}

/**
 * GET a JSON feed; a kiosk wall (re)mints its session first, and once more on 401.
 * @param {string} path
 * @param {Record<string, unknown>} [query]
 * @returns {Promise<any>}
 */
async function feed(path, query) {
  if (kioskToken && !sessionToken) await mint();
  try {
    return await api(path, { bearer: sessionToken, query });
  } catch (err) {
    if (!(kioskToken && err instanceof ApiError && err.status === 401)) throw err;
    sessionToken = null;
    await mint();
    return api(path, { bearer: sessionToken, query });
  }
}

// ------------------------------------------------------------------ connection indicator
const connEl = byId("conn");
const connText = byId("conn-text");
/**
 * @param {string} s
 * @param {{retryInS?: number}} [info]
 */
function setConn(s, info = {}) {
  connEl.setAttribute("data-state", s);
  connText.textContent = t("conn." + s) + (info.retryInS ? " " + info.retryInS + "s" : "");
}

// ------------------------------------------------------------------ clock
const clockEl = byId("clock");
const dateEl = byId("clock-date");
const fmtDate = cityFormat({ year: "numeric", month: "2-digit", day: "2-digit", weekday: "short" });
function tick() {
  const now = new Date();
  clockEl.textContent = fmtTime.format(now);
  dateEl.textContent = fmtDate.format(now);
}
tick();
setInterval(tick, CLOCK_MS);

// ------------------------------------------------------------------ layout
const stage = byId("stage");
const gridEl = byId("grid");
/** @type {ReturnType<typeof mountLayout> | null} */
let mounted = null;
/** @type {any} */
let layout = null;

/**
 * Show *next* unless it is what the wall shows already (same layout, same version).
 * @param {any} next {id, name, columns, rows, windows, version}
 */
function showLayout(next) {
  if (!next || !Array.isArray(next.windows)) return;
  if (layout && layout.id === next.id && layout.version === next.version) return;
  if (mounted) mounted.destroy();
  layout = next;
  stage.dataset.layoutId = next.id === null ? "default" : String(next.id);
  stage.dataset.layoutVersion = String(next.version);
  mounted = mountLayout(gridEl, next, { feed });
  state.layout = { id: next.id, name: next.name, version: next.version, windows: next.windows.length, at: Date.now() };
  state.switches += 1;
}

// ------------------------------------------------------------------ state for tests
const live = new LiveSocket({
  token: () => sessionToken,
  // A socket that died before opening may have been refused for an expired session: the
  // browser hides the HTTP status of a failed upgrade, so ask a feed (which re-mints).
  beforeConnect: ({ suspect }) => {
    if (!kioskToken || (sessionToken && !suspect)) return Promise.resolve();
    return suspect ? feed("/api/v1/auth/me") : mint();
  },
  onState: setConn,
  onOpen: (opens) => { if (opens > 1) resync(); },
});

const state = {
  loadedAt: Date.now(),
  ws: live.stats,
  events: { alerts: 0, positions: 0, kpis: 0, wall: 0 },
  charts: { loads: 0, errors: 0, generated_at: null },
  kpis: store.kpis,
  /** @type {any} */
  lastAlert: null,
  /** @type {any} */
  layout: null,
  switches: 0,
  counts: () => {
    const list = mounted ? mounted.primaryTicker() : null;
    return {
      tickerRows: list ? list.children.length : 0,
      tickerIds: list ? list.querySelectorAll("li[data-id]").length : 0,
      alertMarkers: store.pins.size,
      vehicles: store.vehicles.size,
      domNodes: document.getElementsByTagName("*").length,
    };
  },
};
/** @type {any} */ (window).__bs = state;

showLayout(config.layout && config.layout.layout);
setInterval(sweep, SWEEP_MS);
onResize(() => { if (mounted) mounted.resize(); });

// ------------------------------------------------------------------ feeds
const updatedEl = byId("updated");
function loadCharts() {
  return feed("/big-screen/data/charts").then((d) => {
    state.charts.loads += 1;
    state.charts.generated_at = d.generated_at;
    setCharts(d);
    updatedEl.textContent = t("updated") + " " + fmtTime.format(new Date());
  }).catch((e) => {
    state.charts.errors += 1;
    if (e instanceof ApiError && e.status === 401) setConn("auth");
  });
}

function loadAlerts() {
  // oldest first so the newest ends on top
  return feed("/big-screen/data/alerts").then((d) => d.items.slice().reverse().forEach(addAlert)).catch(() => {});
}

function loadDistricts() {
  return feed("/big-screen/data/districts").then(setDistricts).catch(() => { /* the map stays usable without boundaries */ });
}

function loadVehicles() {
  return feed("/big-screen/data/vehicles").then((d) => d.items.forEach(upsertVehicle)).catch(() => {});
}

function resync() {
  loadAlerts();
  loadCharts();
}

// ------------------------------------------------------------------ live
live.subscribe("alerts", {}, (rows) => rows.forEach((a) => {
  if (!a || typeof a !== "object") return;
  state.events.alerts += 1;
  state.lastAlert = a;
  addAlert(a);
}));
live.subscribe("positions", {}, (rows) => {
  state.events.positions += rows.length;
  for (const p of rows) if (p && (p.kind === "vehicle" || p.kind === undefined)) upsertVehicle(p);
});
live.subscribe("kpis", {}, (rows) => {
  state.events.kpis += 1;
  rows.forEach(applyKpis);
});
live.subscribe("wall", {}, (rows) => {
  state.events.wall += 1;
  for (const row of rows) showLayout(row && row.layout);
});

// ------------------------------------------------------------------ start
setConn("connecting");
const boot = kioskToken ? mint().catch(() => setConn("auth")) : Promise.resolve();
boot.then(() => {
  live.start();
  loadDistricts().then(loadVehicles);
  loadAlerts();
  loadCharts();
});
setInterval(loadCharts, W.chart_refresh_s * 1000);
