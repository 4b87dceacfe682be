// @ts-check
/* Today's inspection list on the phone (/m; issue 11 item 8, docs/API.md "Inspection list").

   The stations and stores of the officer's districts ranked by risk (GET /api/v1/risk/sites,
   the same list as the /inspection-list page), each with its reasons in the phone's language.
   The service worker never caches API answers (stale alerts would mislead), so the last list
   fetched is kept here in localStorage with the time it was fetched and whose it is: opened
   without signal, the tab shows that list and says how old it is. It is removed at logout and
   never shown to another user. Shown to the roles of server.domain.site_risk.READ_ROLES (the
   shell's config `risk_roles`). */
import { api, qs } from "/static/js/lib/api.js";
import { config } from "/static/js/lib/config.js";
import { byId, clear, el } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { t } from "/static/js/lib/i18n.js";

const ENDPOINT = "/api/v1/risk/sites";
const STORE_KEY = "cylwatch-m-today";
const english = config.lang === "en";
const fmtTime = cityFormat({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

/** What the view shows (tests read it through window.__m.today). */
export const shown = { sites: 0, offline: false, savedAt: /** @type {string | null} */ (null), fetches: 0 };

/** @param {{role?: string} | null} user */
export function mayRead(user) {
  return !!user && (config.risk_roles || []).includes(String(user.role));
}

const box = byId("today-list");
const note = byId("today-note");
/** @type {{username?: string} | null} */
let owner = null;

/** @returns {{user: string, saved_at: string, body: any} | null} */
function saved() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    return s && owner && s.user === owner.username ? s : null;
  } catch {
    return null;
  }
}

/** The saved list goes with the session (logout) and never passes to another user. */
export function forget() {
  localStorage.removeItem(STORE_KEY);
  owner = null;
  clear(box);
  note.textContent = "";
  shown.sites = 0;
}

/** @param {any} site */
function card(site) {
  return el("li", { class: "m-card m-today-site", dataset: { site: site.code, rank: String(site.rank) } },
    el("header", { class: "m-today-head" },
      el("span", { class: "m-today-rank", text: String(site.rank) }),
      el("div", { class: "m-today-name" }, el("b", { text: site.name }), el("span", { class: "m-muted", text: " " + site.code })),
      el("span", { class: "m-today-score", title: t("today.score"), text: String(site.score) })),
    el("p", { class: "m-muted", text: [t("today.kind." + site.kind), site.company_name, english ? site.district_code : site.district_name].filter(Boolean).join(" · ") }),
    site.address ? el("p", { class: "m-muted", text: site.address }) : null,
    el("ul", { class: "m-today-reasons" }, (site.reasons || []).map((/** @type {any} */ r) =>
      el("li", { dataset: { factor: r.factor } }, english ? r.text_en : r.text))),
    el("a", { class: "m-btn", href: "/" + qs({ site: site.code }), text: t("today.on_map") }));
}

/**
 * @param {any} body the API's answer
 * @param {string | null} savedAt when it was fetched, if it comes from the phone's copy
 */
function draw(body, savedAt) {
  const items = body.items || [];
  shown.sites = items.length;
  shown.offline = savedAt !== null;
  shown.savedAt = savedAt;
  const head = t("today.as_of", { as_of: String(body.as_of), days: body.window_days, shown: items.length, of: body.ranked_of });
  note.textContent = savedAt ? t("today.offline", { at: fmtTime.format(new Date(savedAt)) }) + " " + head : head;
  note.classList.toggle("m-today-stale", savedAt !== null);
  clear(box);
  if (!items.length) {
    box.appendChild(el("p", { class: "m-empty", text: t("today.empty") }));
    return;
  }
  box.appendChild(el("ol", { class: "m-today-sites" }, items.map(card)));
}

/** Fetch today's list (or, without signal, show the last one fetched). */
export async function load() {
  try {
    const body = await api(ENDPOINT);
    shown.fetches += 1;
    const at = new Date().toISOString();
    if (owner && owner.username) {
      try {
        localStorage.setItem(STORE_KEY, JSON.stringify({ user: owner.username, saved_at: at, body }));
      } catch { /* a full storage keeps the view, not the copy */ }
    }
    draw(body, null);
  } catch {
    const copy = saved();
    if (copy) { draw(copy.body, copy.saved_at); return; }
    clear(box).appendChild(el("p", { class: "m-error", text: navigator.onLine ? t("today.failed") : t("today.none_offline") }));
    note.textContent = "";
  }
}

/**
 * The app started (online) or resumed as the remembered user (offline).
 * @param {any} user
 * @param {boolean} online
 */
export function started(user, online) {
  if (!mayRead(user)) { forget(); return; }
  if (owner && owner.username !== user.username) forget();
  owner = user;
  if (!online) {
    const copy = saved();
    if (copy) draw(copy.body, copy.saved_at);
  }
}
