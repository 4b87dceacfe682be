// @ts-check
/* The recipients picker of the message and notice forms (templates/recipients.html): what to
   pick (companies, users, districts), a search over GET /api/v1/messages/targets (the sender's
   scope, docs/API.md "Messages and notices"), the choices to add, and the chosen ones as
   removable chips. `audience()` is the body's `to` {users, companies, districts}. */
import { api } from "./api.js";
import { byId, clear, el } from "./dom.js";
import { lang, t } from "./i18n.js";

const SEARCH_DELAY_MS = 250;

/**
 * @typedef {{kind: string, id: number | string, label: string}} Chosen
 */

/** @param {string} kind @param {any} item */
function labelOf(kind, item) {
  if (kind === "companies") return item.name + " (" + item.code + ")";
  if (kind === "districts") return (lang === "en" && item.name_en ? item.name_en : item.name) + " (" + item.code + ")";
  const who = item.display_name ? item.display_name + " · " + item.username : item.username;
  return who + " · " + t("role." + item.role) + (item.company_name ? " · " + item.company_name : "");
}

export function recipientsPicker() {
  const kindSel = /** @type {HTMLSelectElement} */ (byId("to-kind"));
  const search = /** @type {HTMLInputElement} */ (byId("to-search"));
  const options = byId("to-options");
  const chosenList = byId("to-chosen");
  const empty = byId("to-empty");
  /** @type {Map<string, Chosen>} */
  const chosen = new Map();
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let asked = 0;

  function drawChosen() {
    clear(chosenList);
    empty.hidden = chosen.size > 0;
    for (const [key, c] of chosen) {
      chosenList.appendChild(el("li", { class: "chip", dataset: { testid: "to-chip", kind: c.kind, id: String(c.id) } },
        el("span", { class: "chip-kind", text: t("messages.to." + c.kind) }), " ", c.label, " ",
        el("button", { type: "button", class: "chip-x", "aria-label": t("messages.remove") + " " + c.label,
          onclick: () => { chosen.delete(key); drawChosen(); } }, "×")));
    }
  }

  async function lookup() {
    const mine = ++asked;
    const kind = kindSel.value;
    try {
      const res = await api("/api/v1/messages/targets", { query: { kind, q: search.value.trim() } });
      if (mine !== asked) return;
      clear(options);
      for (const item of res.items) {
        const id = kind === "districts" ? item.code : item.id;
        const label = labelOf(kind, item);
        options.appendChild(el("li", {},
          el("button", { type: "button", class: "btn btn-sm btn-link", dataset: { testid: "to-option", kind, id: String(id) },
            onclick: () => { chosen.set(kind + ":" + id, { kind, id, label }); drawChosen(); } }, "+ " + label)));
      }
      if (!res.items.length) options.appendChild(el("li", { class: "muted", text: t("messages.to_nothing") }));
    } catch (err) {
      if (mine !== asked) return;
      clear(options).appendChild(el("li", { class: "muted", text: /** @type {Error} */ (err).message }));
    }
  }

  function later() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(lookup, SEARCH_DELAY_MS);
  }

  kindSel.addEventListener("change", () => { search.value = ""; lookup(); });
  search.addEventListener("input", later);
  search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); lookup(); } });

  return {
    /** Empty the choice and show the first choices. */
    reset() {
      chosen.clear();
      search.value = "";
      drawChosen();
      lookup();
    },
    get size() { return chosen.size; },
    /** The `to` of a message or notice. */
    audience() {
      /** @type {{users: number[], companies: number[], districts: string[]}} */
      const to = { users: [], companies: [], districts: [] };
      for (const c of chosen.values()) {
        if (c.kind === "districts") to.districts.push(String(c.id));
        else if (c.kind === "users") to.users.push(Number(c.id));
        else to.companies.push(Number(c.id));
      }
      return to;
    },
  };
}
