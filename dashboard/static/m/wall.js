// @ts-check
/* The phone's "wall" card (授权控制, DESIGN §8): an admin or a regulator switches the layout
   a command-centre wall shows, from the settings tab of /m. The walls the user may switch
   and the layouts come from GET /api/v1/wall-layouts; the switch is the websocket command
   `wall_switch` on the phone's own socket (docs/WEBSOCKET.md), so the wall follows within a
   second; without a socket it falls back on the REST activate. Only online: a switch is
   something happening now, never queued for later. */
import { api } from "/static/js/lib/api.js";
import { config } from "/static/js/lib/config.js";
import { byId, el } from "/static/js/lib/dom.js";
import { lang, t } from "/static/js/lib/i18n.js";

export const shown = { switches: 0, loaded: 0 };

/** @param {any} user */
export function mayControl(user) {
  return !!user && (config.wall_roles || []).includes(user.role);
}

/** @type {any} */
let live = null;
/** @type {any[]} */
let walls = [];

/** @param {{scope: string, name: string | null, name_en: string | null}} s */
function scopeName(s) {
  if (s.scope === "city") return t("wall.city");
  return (lang === "en" ? s.name_en || s.name : s.name) || s.scope;
}

function showNow() {
  const scope = /** @type {HTMLSelectElement} */ (byId("wall-scope")).value;
  const now = walls.find((w) => w.scope === scope);
  byId("wall-now").textContent = t("wall.now", { name: now ? now.name : t("wall.default") });
}

async function load() {
  const body = await api("/api/v1/wall-layouts", { query: { page_size: 200 } });
  walls = body.walls || [];
  const scopeSel = /** @type {HTMLSelectElement} */ (byId("wall-scope"));
  const keep = scopeSel.value;
  scopeSel.replaceChildren(...(body.scopes || []).map((/** @type {any} */ s) => el("option", { value: s.scope, text: scopeName(s) })));
  if (keep) scopeSel.value = keep;
  byId("wall-layout").replaceChildren(...body.items.map((/** @type {any} */ l) => el("option", { value: String(l.id), text: l.name })));
  showNow();
  shown.loaded += 1;
}

/**
 * The user is known (m.js): show the card to those who may switch, and fill it.
 * @param {any} user
 * @param {any} socket the phone's LiveSocket
 */
export function started(user, socket) {
  live = socket;
  const card = byId("wall-card");
  card.hidden = !mayControl(user);
  if (card.hidden || !navigator.onLine) return;
  load().catch(() => { byId("wall-status").textContent = t("wall.failed"); });
}

byId("wall-scope").addEventListener("change", showNow);
byId("wall-switch").addEventListener("click", async () => {
  const btn = /** @type {HTMLButtonElement} */ (byId("wall-switch"));
  const status = byId("wall-status");
  const scope = /** @type {HTMLSelectElement} */ (byId("wall-scope")).value;
  const layout = Number(/** @type {HTMLSelectElement} */ (byId("wall-layout")).value);
  if (!scope || !layout) return;
  btn.disabled = true;
  status.textContent = "";
  try {
    try {
      await live.request({ type: "wall_switch", layout, scope });
    } catch (/** @type {any} */ err) {
      if (!err || (err.code !== "offline" && err.code !== "timeout")) throw err;
      await api("/api/v1/wall-layouts/" + layout + "/activate", { method: "POST", body: { scope } });
    }
    shown.switches += 1;
    status.textContent = t("wall.switched");
    await load();
  } catch (/** @type {any} */ err) {
    status.textContent = t("wall.failed") + (err && err.message ? " — " + err.message : "");
  } finally {
    btn.disabled = false;
  }
});
