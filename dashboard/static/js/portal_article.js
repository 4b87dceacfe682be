// @ts-check
/* One article on the public portal (/portal/{id}, no login): its category, date and by-line,
   the text drawn from its markup as DOM nodes, its pictures, its clips played from the
   platform, its documents to download and its links (GET /api/v1/public/articles/{id}).
   A draft or an unknown id is "not found", as the API says. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";
import { renderBody, renderLinks, renderMedia } from "./articles-render.js";

const root = byId("portal-article");

/** The day of an instant in the reader's own clock (the city's). @param {unknown} v */
function day(v) {
  return dateTime(v).slice(0, 10);
}

/** @param {any} a */
function draw(a) {
  document.title = a.title + " · " + t("portal.title");
  clear(root).append(
    el("p", { class: "art-meta" },
      el("a", { href: "/portal?category=" + a.category, text: t("articles.category." + a.category) }),
      " · ", el("time", { datetime: String(a.published_at), text: day(a.published_at) }),
      a.author ? " · " + a.author : ""),
    el("h1", { class: "art-title", dataset: { testid: "article-title" }, text: a.title }),
    a.summary ? el("p", { class: "art-lead", text: a.summary }) : "",
    el("div", { class: "art-body", dataset: { testid: "article-body" } }, renderBody(a.body)),
    ...renderMedia(a.media || []),
    renderLinks(a.links) || "",
  );
}

/** @param {any} err */
function failed(err) {
  const key = err.status === 404 ? "portal.not_found" : err.status === 429 ? "public.rate_limited" : "portal.load_failed";
  clear(root).appendChild(el("div", { class: "empty-state", dataset: { testid: "empty-state" } },
    el("div", { class: "empty-icon", "aria-hidden": "true", text: "?" }),
    el("p", { class: "empty-title", text: t(key) }),
    el("p", {}, el("a", { href: "/portal", text: t("portal.back") }))));
}

api("/api/v1/public/articles/" + config.article_id, { query: { lang }, noRedirect: true })
  .then(draw, failed)
  .finally(() => { document.body.dataset.ready = "1"; });
