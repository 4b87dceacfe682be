// @ts-check
/* The public portal's list (/portal, no login): the published articles of the reader's
   language, newest first, by category (the links above the list), as cards with a cover,
   the date and an excerpt; "more" loads the next page (GET /api/v1/public/articles). */
import { api } from "./lib/api.js";
import { byId, clear, el } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";
import { emptyState } from "./lib/ui.js";

const PAGE = 10; // cards a page: a phone's few screens
const category = new URLSearchParams(location.search).get("category") || "";
const list = byId("portal-list");
const more = byId("portal-more");
let page = 0;

/** The day of an instant in the reader's own clock (the city's). @param {unknown} v */
function day(v) {
  return dateTime(v).slice(0, 10);
}

/** @param {any} a an item of the public list */
function card(a) {
  return el("a", { class: "portal-card", href: a.url, dataset: { testid: "portal-card", id: String(a.id) } },
    a.cover_url ? el("img", { class: "portal-cover", src: a.cover_url, alt: "", loading: "lazy" }) : null,
    el("div", { class: "portal-card-text" },
      el("p", { class: "art-meta" }, t("articles.category." + a.category), " · ", day(a.published_at)),
      el("h2", { class: "portal-card-title", text: a.title }),
      a.excerpt ? el("p", { class: "muted portal-excerpt", text: a.excerpt }) : null));
}

/** @param {any} err */
function failed(err) {
  clear(more);
  const message = err.status === 429 ? t("public.rate_limited") : t("portal.load_failed");
  list.appendChild(el("div", { class: "alert-box alert-error", role: "alert", text: message }));
}

async function load() {
  page += 1;
  clear(more);
  try {
    const res = await api("/api/v1/public/articles", { query: { lang, category, limit: PAGE, page }, noRedirect: true });
    if (page === 1) clear(list);
    const items = res.items || [];
    if (page === 1 && !items.length) {
      emptyState(list, "portal.empty", category ? "portal.empty_category" : null, "📰");
    }
    for (const a of items) list.appendChild(card(a));
    if (page * PAGE < res.total) {
      more.appendChild(el("button", { class: "btn btn-block", type: "button", dataset: { testid: "portal-more" }, onclick: load }, t("portal.more")));
    }
  } catch (err) {
    if (page === 1) clear(list);
    failed(err);
  }
  document.body.dataset.ready = "1";
}

load();
