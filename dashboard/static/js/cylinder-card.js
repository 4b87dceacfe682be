// @ts-check
/* A cylinder's card on the regulator's live map (issue 12 item 6, docs/ARCHITECTURE.md §8):
   tag, owner, compliance and status, last fill (time, station), where it is (site, vehicle
   or position) and a link to its archive (/cylinders/{id}).

   The live map draws cylinders two ways (dashboard.js): cylinders at customers as points on
   a canvas (anonymous in the compact array, so a click asks /dashboard/data/cylinders/at for
   the cylinders at that point), and cylinders at sites as the site's counts (a click on a
   site lists its cylinders, GET /api/v1/cylinders?site=). One cylinder opens its card; several
   open a list whose entries open their cards, in the same popup. Every popup gets DOM nodes
   (lib/dom.js): a string given to Leaflet's popup would be parsed as HTML. */
import { api } from "./lib/api.js";
import { clear, el } from "./lib/dom.js";
import { dateTime, number } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { complianceBadge, statusLabel } from "./lib/ui.js";

const POPUP = { className: "cw-card-popup", maxWidth: 320, minWidth: 240, autoPanPadding: [24, 24] };

/**
 * @param {string} key
 * @param {Node | string | null | undefined} value
 */
const row = (key, value) => el("div", {}, el("dt", { text: t(key) }), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value));

/** Where the cylinder is, in words. @param {any} loc the archive's `location` */
function place(loc) {
  if (!loc || !loc.kind) return null;
  const bits = [tOr("location." + loc.kind, loc.kind)];
  if (loc.site_name) bits.push(loc.site_name + (loc.site_code ? " (" + loc.site_code + ")" : ""));
  if (loc.device) bits.push(loc.device);
  if (!loc.site_name && loc.lat !== null && loc.lat !== undefined) bits.push(number(loc.lat, 5) + ", " + number(loc.lon, 5));
  return bits.join(" · ");
}

/**
 * The card of one cylinder (GET /api/v1/cylinders/{id}).
 * @param {any} c
 */
export function cylinderCard(c) {
  const lf = c.last_fill;
  return el("div", { class: "cw-card", dataset: { testid: "cylinder-card", cylinderId: String(c.id) } },
    el("div", { class: "cw-card-head" },
      el("b", { class: "mono cw-card-tag", text: c.tag }),
      complianceBadge(c.compliance)),
    el("dl", { class: "cw-card-dl" },
      row("card.owner", c.owner_name ? c.owner_name + (c.owner_code ? " (" + c.owner_code + ")" : "") : null),
      row("card.status", el("span", { dataset: { testid: "card-status" }, text: statusLabel(c.status) })),
      row("card.last_fill", lf ? el("span", { dataset: { testid: "card-last-fill" }, text: dateTime(lf.ts) + (lf.site_name ? " · " + lf.site_name : "") }) : null),
      row("card.location", el("span", { dataset: { testid: "card-location" }, text: place(c.location) || "—" }))),
    el("a", { class: "btn btn-primary btn-sm cw-card-link", href: "/cylinders/" + c.id, dataset: { testid: "card-archive" }, text: t("card.open_archive") }));
}

/** @param {unknown} err */
const failure = (err) => el("p", { class: "cw-card-msg error", text: t("card.failed") + " " + (err instanceof Error ? err.message : "") });

/**
 * Fill *box* with the card of cylinder *id*.
 * @param {HTMLElement} box
 * @param {number} id
 * @param {() => void} [back] shown as "back to the list" when given
 */
async function showCard(box, id, back) {
  clear(box).appendChild(el("p", { class: "cw-card-msg", text: t("common.loading") }));
  try {
    const c = await api("/api/v1/cylinders/" + id);
    clear(box).appendChild(cylinderCard(c));
    if (back) box.appendChild(el("button", { type: "button", class: "linkish cw-card-back", onclick: back, text: t("card.back") }));
  } catch (err) {
    clear(box).appendChild(failure(err));
  }
}

/**
 * A list of cylinders (id, tag, compliance) whose entries open their cards in *box*.
 * @param {HTMLElement} box
 * @param {string} title
 * @param {any[]} items
 * @param {number} total
 */
function showList(box, title, items, total) {
  const again = () => showList(box, title, items, total);
  clear(box).appendChild(el("div", { class: "cw-card", dataset: { testid: "cylinder-list" } },
    el("b", { class: "cw-card-title", text: title }),
    items.length
      ? el("ul", { class: "cw-card-list" }, items.map((c) => el("li", {},
        el("button", { type: "button", class: "linkish mono", dataset: { cylinderId: String(c.id) }, onclick: () => showCard(box, c.id, again), text: c.tag }),
        " ", complianceBadge(c.compliance))))
      : el("p", { class: "cw-card-msg", text: t("card.none") }),
    total > items.length ? el("p", { class: "cw-card-msg", text: t("card.more", { n: number(total - items.length, 0) }) }) : null));
}

/**
 * Open a popup on *map* at *latlng* whose content is filled by *fill*.
 * @param {any} map @param {any} latlng @param {(box: HTMLElement) => unknown} fill
 */
function popup(map, latlng, fill) {
  const box = el("div", { class: "cw-card-box" }, el("p", { class: "cw-card-msg", text: t("common.loading") }));
  // A button replaces the popup's content when clicked; Leaflet 1.9 then walks up from the
  // click's (now detached) target, cannot see it was inside the popup, and closes it as a
  // click on the map. The click ends here instead (links still follow their href).
  box.addEventListener("click", (ev) => ev.stopPropagation());
  L.popup(POPUP).setLatLng(latlng).setContent(box).openOn(map);
  fill(box);
  return box;
}

/**
 * The cylinders drawn at one customer point (the compact array's stored position), with the
 * map's filters: one opens its card, several a list.
 * @param {any} map
 * @param {any} latlng where the point is drawn
 * @param {[number, number]} stored the point's stored position (WGS-84, as the array has it)
 * @param {Record<string, unknown>} filter the map's district/company/compliance
 */
export function openPoint(map, latlng, stored, filter) {
  return popup(map, latlng, async (box) => {
    try {
      const res = await api("/dashboard/data/cylinders/at", { query: { ...filter, lat: stored[0], lon: stored[1] } });
      const items = res.items || [];
      if (items.length === 1) await showCard(box, items[0].id);
      else showList(box, t("card.at_point", { n: items.length }), items, items.length);
    } catch (err) {
      clear(box).appendChild(failure(err));
    }
  });
}

/**
 * The cylinders at a site (first page of GET /api/v1/cylinders?site=, in the caller's
 * scope and the map's filters), each opening its card.
 * @param {any} map
 * @param {any} latlng
 * @param {{id: number, name: string, code: string}} site
 * @param {Record<string, unknown>} filter
 */
export function openSite(map, latlng, site, filter) {
  return popup(map, latlng, async (box) => {
    try {
      const query = { site: site.id, district: filter.district, company: filter.company, compliance: filter.compliance };
      const env = await api("/api/v1/cylinders", { query });
      const items = env.items || [];
      showList(box, t("card.at_site", { site: site.name, n: number(env.total, 0) }), items, env.total || items.length);
    } catch (err) {
      clear(box).appendChild(failure(err));
    }
  });
}
