// @ts-check
/* CylinderWatch officer PWA (/m).

   The page is a cached shell: it asks the server who is logged in, then shows either the
   login form or the app. Live alerts arrive on /ws (the server scopes them to the officer's
   districts) through the platform's one websocket client (lib/ws.js); acknowledge/resolve
   and logout are cookie-authenticated POSTs with the CSRF header (lib/api.js). Before each
   reconnect the page asks whether the session still exists, and after each one it re-reads
   the list, so nothing missed while a phone was in a lift stays missing.
   The lookup (lookup.js) and the registration from the phone (register.js) are modules of
   their own; the registration tab is shown to the roles that register cylinders, the safety
   inspection tab (safety.js, with its IndexedDB queue) to the roles that inspect, the
   complaint tab (complaint.js, 投诉登记) to field officers, today's inspection list
   (today.js, the last one fetched kept for offline) to officers and regulators. The last
   user is remembered on the phone, so the app (and the inspections waiting to be sent) opens
   without signal too; it asks the server again as soon as there is one.
   window.__m exposes counters for tests. */
import { ApiError, api, csrfToken } from "/static/js/lib/api.js";
import { config } from "/static/js/lib/config.js";
import { byId, el } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { t } from "/static/js/lib/i18n.js";
import { LiveSocket } from "/static/js/lib/ws.js";
import * as complaint from "./complaint.js";
import * as lookup from "./lookup.js";
import { queueState } from "./offline-queue.js";
import * as register from "./register.js";
import * as safety from "./safety.js";
import * as today from "./today.js";
import * as wallCard from "./wall.js";
import { mayRead, who } from "./who.js";

const MAX_ALERTS = 100;
const BOOT_RETRY_MS = 5000;

const state = { user: null, wsOpens: 0, alertEvents: 0, lastAlert: null, sw: /** @type {string | null} */ (null), actions: 0,
  lookup: lookup.shown, register: register.shown, safety: safety.shown, complaint: complaint.shown, today: today.shown, queue: queueState, offlineStart: false };
/** @type {any} */ (window).__m = state;
const fmtTime = cityFormat({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
/** @param {unknown} raw */
function when(raw) {
  if (!raw) return "";
  const d = new Date(/** @type {string} */ (raw));
  return isNaN(d.getTime()) ? String(raw) : fmtTime.format(d);
}

// ------------------------------------------------------------------ service worker
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/m/sw.js", { scope: config.scope })
    .then(() => {
      state.sw = "registered";
      return navigator.serviceWorker.ready.then(() => { state.sw = "ready"; refreshPush(); });
    })
    .catch((e) => { state.sw = "failed: " + e; });
}

/** @param {boolean} off */
const setOffline = (off) => { byId("m-offline").hidden = !off; };
window.addEventListener("online", () => setOffline(false));
window.addEventListener("offline", () => setOffline(true));

// ------------------------------------------------------------------ views
/** @param {"login" | "app"} view */
function show(view) {
  byId("view-login").hidden = view !== "login";
  byId("view-app").hidden = view !== "app";
}
const tabButtons = /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll(".m-tabs button"));
/** @param {string} name */
function selectTab(name) {
  tabButtons.forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  for (const n of ["alerts", "today", "lookup", "register", "safety", "complaint", "settings"]) byId("tab-" + n).hidden = n !== name;
  if (name !== "lookup") lookup.scanner.stop();
  else lookup.resized();
  if (name !== "register") register.scanner.stop();
  else if (state.user) register.opened(state.user);
  if (name !== "safety") safety.scanner.stop();
  else safety.opened();
  if (name !== "complaint") complaint.scanner.stop();
  if (name === "today") today.load();
}
tabButtons.forEach((b) => b.addEventListener("click", () => selectTab(String(b.dataset.tab))));

// ------------------------------------------------------------------ live socket
const conn = byId("m-conn");
/** @param {string} s */
function setConn(s) {
  conn.dataset.state = s;
  conn.textContent = t("conn." + s);
}
setConn("connecting");

const live = new LiveSocket({
  // the session may have ended while the phone was away: ask before reconnecting
  beforeConnect: ({ attempt }) => (attempt === 0 ? Promise.resolve() : api("/api/v1/auth/me").catch((e) => {
    if (e.status === 401) { live.stop(); show("login"); }
    throw e;
  })),
  onState: (s) => setConn(s),
  onOpen: (opens) => {
    state.wsOpens = opens;
    if (opens > 1) loadAlerts();
  },
});
live.subscribe("alerts", {}, (rows) => {
  for (const a of rows) {
    state.alertEvents += 1;
    state.lastAlert = a;
    upsert(a, true);
  }
});

// ------------------------------------------------------------------ login
const USER_KEY = "cylwatch-m-user";
/** @returns {any} the user of the last session on this phone (null: none) */
function rememberedUser() {
  try { return JSON.parse(localStorage.getItem(USER_KEY) || "null"); } catch { return null; }
}
/** @param {any} user */
function remember(user) {
  if (user) localStorage.setItem(USER_KEY, JSON.stringify(user));
  else localStorage.removeItem(USER_KEY);
}

function boot() {
  // no CSRF cookie: no session either (they are set together), so do not ask
  if (!csrfToken() && navigator.onLine) { remember(null); show("login"); return; }
  api("/api/v1/auth/me").then((body) => {
    setOffline(false);
    remember(body.user);
    startApp(body.user, true);
  }).catch((e) => {
    if (e.status === 401 || e.status === 403) { remember(null); show("login"); return; }
    setOffline(true);
    // no signal: open the app as the last user (what waits to be sent is theirs to see)
    const last = rememberedUser();
    if (last && !state.user) { state.offlineStart = true; startApp(last, false); }
    setTimeout(boot, BOOT_RETRY_MS);
  });
}

const loginForm = /** @type {HTMLFormElement} */ (byId("login-form"));
const loginUser = /** @type {HTMLInputElement} */ (byId("login-username"));
const loginPassword = /** @type {HTMLInputElement} */ (byId("login-password"));
loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  byId("login-error").textContent = "";
  api("/api/v1/auth/login", { method: "POST", body: { username: loginUser.value, password: loginPassword.value }, noRedirect: true })
    .then(() => { loginPassword.value = ""; boot(); })
    .catch(() => { byId("login-error").textContent = navigator.onLine ? t("login.failed") : t("login.offline"); });
});

byId("logout-btn").addEventListener("click", () => {
  api("/api/v1/auth/logout", { method: "POST" }).catch(() => {}).then(() => {
    live.stop();
    state.user = null;
    remember(null);
    safety.started(null, false);
    today.forget();
    alerts.forEach((a) => a.el.remove());
    alerts.clear();
    show("login");
  });
});

let started = false;
/**
 * @param {any} user
 * @param {boolean} online false: opened from the remembered user without signal
 */
function startApp(user, online) {
  state.user = user;
  who.user = user;
  byId("me-name").textContent = (user.display_name || user.username) + " (" + user.role + ")";
  byId("me-districts").textContent = (user.districts || []).join(", ") || "—";
  const canAlerts = mayRead("alerts");
  byId("tab-btn-register").hidden = !register.mayRegister(user);
  byId("tab-btn-alerts").hidden = !canAlerts;
  byId("tab-btn-safety").hidden = !safety.mayInspect(user);
  byId("tab-btn-complaint").hidden = !complaint.mayFile(user);
  byId("tab-btn-today").hidden = !today.mayRead(user);
  show("app");
  const onForbiddenTab = (!register.mayRegister(user) && !byId("tab-register").hidden) || (!canAlerts && !byId("tab-alerts").hidden)
    || (!safety.mayInspect(user) && !byId("tab-safety").hidden) || (!complaint.mayFile(user) && !byId("tab-complaint").hidden)
    || (!today.mayRead(user) && !byId("tab-today").hidden);
  if (!started || onForbiddenTab) { started = true; selectTab(canAlerts ? "alerts" : "lookup"); }
  safety.started(user, online);
  today.started(user, online);
  if (!online) return;
  wallCard.started(user, live);
  loadAlerts();
  live.start();
}

document.addEventListener("visibilitychange", () => {
  // phones freeze background tabs; on return, re-read what the socket may have missed
  if (document.visibilityState === "visible" && state.user) {
    loadAlerts();
    live.start();
  }
});

// ------------------------------------------------------------------ alerts
/** @type {Map<string, {data: any, el: HTMLLIElement}>} */
const alerts = new Map();
const list = byId("alerts");

function updateEmpty() {
  byId("alerts-empty").hidden = alerts.size > 0;
  let open = 0;
  alerts.forEach((a) => { if (a.data.state === "open") open += 1; });
  const badge = byId("alerts-badge");
  badge.hidden = open === 0;
  badge.textContent = String(open);
}

/**
 * @param {any} a
 * @param {boolean} fresh
 */
function render(a, fresh) {
  const sev = a.severity || "warning";
  const meta = [a.site_name || a.company_name || "", a.subject_id || "", a.district || "",
    when(a.last_at), a.count > 1 ? t("alerts.count", { n: a.count }) : ""].filter(Boolean).join(" · ");
  return el("li", { class: "m-alert sev-" + sev + (fresh ? " fresh" : ""), dataset: { id: String(a.id) } },
    el("header", {},
      el("h3", {}, el("span", { class: "sev", text: t("severity." + sev) }), t("kind." + a.kind)),
      el("span", { class: "state", text: t("state." + a.state) })),
    el("p", { class: "meta", text: meta }),
    a.details && a.details.reasons ? el("p", { class: "meta", text: [].concat(a.details.reasons).join(", ") }) : null,
    el("textarea", { placeholder: t("alerts.note"), maxlength: 2000 }),
    el("div", { class: "actions" },
      a.state === "open" ? el("button", { class: "m-btn", type: "button", dataset: { action: "ack" }, text: t("alerts.ack") }) : null,
      el("button", { class: "m-btn primary", type: "button", dataset: { action: "resolve" }, text: t("alerts.resolve") })),
    el("p", { class: "m-error" }));
}

/** @param {HTMLElement} li */
const noteOf = (li) => /** @type {HTMLTextAreaElement} */ (li.querySelector("textarea"));

/**
 * @param {any} a
 * @param {boolean} fresh
 */
function upsert(a, fresh) {
  if (!a || a.id === undefined) return;
  const id = String(a.id);
  const old = alerts.get(id);
  if (old) {
    const merged = { ...old.data, ...a }; // a live row lacks the names the REST row carries
    if (merged.state === "resolved") { old.el.remove(); alerts.delete(id); updateEmpty(); return; }
    const replaced = render(merged, fresh);
    noteOf(replaced).value = noteOf(old.el).value; // a note being typed survives a counter bump
    list.replaceChild(replaced, old.el);
    if (fresh) list.insertBefore(replaced, list.firstChild);
    alerts.set(id, { data: merged, el: replaced });
  } else {
    if (a.state === "resolved") return;
    const li = render(a, fresh);
    if (fresh) list.insertBefore(li, list.firstChild);
    else list.appendChild(li);
    alerts.set(id, { data: a, el: li });
    while (alerts.size > MAX_ALERTS) {
      const last = /** @type {HTMLElement} */ (list.lastElementChild);
      alerts.delete(String(last.dataset.id));
      last.remove();
    }
  }
  updateEmpty();
}

list.addEventListener("click", (ev) => {
  const btn = /** @type {HTMLElement} */ (ev.target).closest("button[data-action]");
  if (!btn) return;
  const li = /** @type {HTMLElement} */ (btn.closest("li"));
  const id = String(li.dataset.id);
  const note = noteOf(li).value.trim();
  const action = String(/** @type {HTMLElement} */ (btn).dataset.action);
  const buttons = /** @type {NodeListOf<HTMLButtonElement>} */ (li.querySelectorAll("button"));
  buttons.forEach((b) => { b.disabled = true; });
  api("/api/v1/alerts/" + encodeURIComponent(id) + "/" + action, { method: "POST", body: note ? { note } : {} })
    .then((body) => {
      state.actions += 1;
      const updated = body && body.alert ? body.alert : body;
      const cur = alerts.get(id);
      const merged = { ...(cur ? cur.data : {}), ...(updated || {}), state: action === "ack" ? "acknowledged" : "resolved" };
      if (updated && updated.state) merged.state = updated.state;
      upsert(merged, false);
    })
    .catch((e) => {
      /** @type {HTMLElement} */ (li.querySelector(".m-error")).textContent = e instanceof ApiError && e.status ? e.message : t("alerts.failed");
      buttons.forEach((b) => { b.disabled = false; });
    });
});

function loadAlerts() {
  if (!mayRead("alerts")) return Promise.resolve();
  return Promise.all(["open", "acknowledged"].map((s) =>
    api("/api/v1/alerts", { query: { state: s, page_size: MAX_ALERTS } }).then((b) => b.items || [])))
    .then(([open, acked]) => {
      const items = open.concat(acked);
      items.sort((x, y) => String(y.last_at).localeCompare(String(x.last_at)));
      const seen = new Set(items.map((a) => String(a.id)));
      alerts.forEach((a, id) => { if (!seen.has(id)) { a.el.remove(); alerts.delete(id); } });
      for (const a of items.slice(0, MAX_ALERTS)) {
        const cur = alerts.get(String(a.id));
        if (cur) list.appendChild(cur.el);
        upsert(a, false);
      }
      updateEmpty();
    })
    .catch((e) => { if (e.status === 401) show("login"); });
}

// ------------------------------------------------------------------ Web Push
const pushBtn = /** @type {HTMLButtonElement} */ (byId("push-btn"));
const pushStatus = byId("push-status");
const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

/** @param {string} b64 base64url */
function b64ToBytes(b64) {
  let s = b64.replace(/-/g, "+").replace(/_/g, "/");
  s += "====".slice(0, (4 - s.length % 4) % 4);
  return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
}
const currentSubscription = () => navigator.serviceWorker.ready.then((reg) => reg.pushManager.getSubscription());

function refreshPush() {
  if (!pushSupported()) { pushStatus.textContent = t("push.unsupported"); pushBtn.disabled = true; return; }
  currentSubscription().then((sub) => {
    pushStatus.textContent = sub ? t("push.on") : Notification.permission === "denied" ? t("push.denied") : t("push.off");
    pushBtn.textContent = sub ? t("push.disable") : t("push.enable");
    pushBtn.dataset.on = sub ? "1" : "";
  }).catch(() => {});
}
pushBtn.addEventListener("click", () => {
  if (!pushSupported()) return;
  pushBtn.disabled = true;
  const done = () => { pushBtn.disabled = false; refreshPush(); };
  if (pushBtn.dataset.on) {
    currentSubscription().then((sub) => {
      if (!sub) return null;
      return api("/api/v1/push/subscriptions", { method: "DELETE", body: { endpoint: sub.endpoint } })
        .catch(() => {}).then(() => sub.unsubscribe());
    }).then(done, done);
    return;
  }
  Notification.requestPermission().then((perm) => {
    if (perm !== "granted") throw new Error("denied");
    return api("/api/v1/push/vapid-public-key");
  }).then((body) => {
    const key = typeof body === "string" ? body : body.key || body.public_key || body.publicKey || body.vapid_public_key;
    return navigator.serviceWorker.ready.then((reg) => reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(key) }));
  }).then((sub) => api("/api/v1/push/subscriptions", { method: "POST", body: sub.toJSON() }))
    .then(done)
    .catch((e) => {
      done();
      pushStatus.textContent = e && e.message === "denied" ? t("push.denied") : t("push.failed");
    });
});

boot();
