// @ts-check
/* The editors' list of articles (GET /api/v1/articles): every state, the last edited first,
   filtered by state, category, language and title; a row opens the editor
   (/admin/articles/{id}), a published one also links to its page on the public portal. */
import { stateBadge } from "./articles-render.js";
import { el } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";

/** @param {any} a */
function title(a) {
  return el("div", { class: "cell-stack" },
    el("a", { href: "/admin/articles/" + a.id, dataset: { testid: "edit-link" }, text: a.title }),
    a.summary ? el("span", { class: "muted art-list-summary", text: a.summary }) : null);
}

/** @param {any} a */
function actions(a) {
  return el("div", { class: "btn-group" },
    el("a", { class: "btn btn-sm", href: "/admin/articles/" + a.id }, t("articles.edit")),
    a.state === "published"
      ? el("a", { class: "btn btn-sm", href: "/portal/" + a.id, target: "_blank", rel: "noopener", dataset: { testid: "view-public" } }, t("articles.view_public"))
      : null);
}

listPage({
  endpoint: "/api/v1/articles",
  emptyTitle: "articles.empty",
  emptyHint: "articles.empty_hint",
  emptyIcon: "📰",
  rowAttrs: (a) => ({ dataset: { id: String(a.id), state: a.state, title: a.title } }),
  columns: [
    { label: "articles.field.title", render: title, sort: (a) => a.title },
    { label: "articles.category", render: (a) => t("articles.category." + a.category), sort: (a) => a.category },
    { label: "articles.language", render: (a) => t("articles.language." + a.language), sort: (a) => a.language },
    { label: "articles.state", render: (a) => el("span", { dataset: { testid: "article-state" } }, stateBadge(a.state)), sort: (a) => a.state },
    { label: "articles.published_at", render: (a) => dateTime(a.published_at), sort: (a) => a.published_at },
    { label: "articles.updated_at", render: (a) => dateTime(a.updated_at), sort: (a) => a.updated_at },
    { label: "articles.media_count", key: "media_count", sort: (a) => a.media_count },
    { label: "common.actions", render: actions },
  ],
});
