// @ts-check
/* The article editor (/admin/articles/new, /admin/articles/{id}): the form over
   POST/PATCH /api/v1/articles, a live preview drawn with the portal's own functions
   (articles-render.js, DOM nodes only), media uploaded one file at a time with a progress bar
   and the server's refusal shown on the file's row (POST /api/v1/articles/{id}/media),
   publish / unpublish, delete a draft. A new article is saved as a draft before it takes
   media; its URL then becomes /admin/articles/{id}. */
import { api, csrfToken } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { errorState, toast } from "./lib/ui.js";
import { renderBody, renderLinks, renderMedia, size, stateBadge } from "./articles-render.js";

const limits = config.limits || {};
const TYPES = ["image/jpeg", "image/png", "image/webp", "application/pdf", "video/mp4"];
const LINK = /^https?:\/\/[^\s<>"]+$/i;

/** @type {number | null} */
let articleId = config.article_id || null;
/** @type {any} */
let article = null;

const form = /** @type {HTMLFormElement} */ (byId("article-form"));
const errorBox = byId("form-error");
const buttons = /** @type {HTMLButtonElement[]} */ (["save", "publish", "unpublish", "delete"].map(byId));
const preview = byId("preview");

/** @param {string} name */
function field(name) {
  return /** @type {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} */ (form.elements.namedItem(name));
}

// ---------------------------------------------------------------- links as lines "label | url"

/** @param {{url: string, label?: string | null}[]} links */
function linksText(links) {
  return (links || []).map((l) => (l.label ? l.label + " | " + l.url : l.url)).join("\n");
}

/**
 * The links typed, one a line: "label | https://…" or just the address.
 * @param {string} text
 * @returns {{links: {url: string, label: string | null}[], error: string | null}}
 */
function parseLinks(text) {
  /** @type {{url: string, label: string | null}[]} */
  const links = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const bar = line.lastIndexOf("|");
    const url = (bar >= 0 ? line.slice(bar + 1) : line).trim();
    const label = bar >= 0 ? line.slice(0, bar).trim() : "";
    if (!LINK.test(url)) return { links, error: t("articles.link_bad", { line }) };
    links.push({ url, label: label || null });
  }
  if (links.length > limits.links) return { links, error: t("articles.links_too_many", { max: limits.links }) };
  return { links, error: null };
}

/** The form as the API's body; null (and the reason shown) when it cannot be sent. */
function payload() {
  const { links, error } = parseLinks(field("links").value);
  const title = field("title").value.trim();
  const problem = error || (title ? null : t("articles.title_required"));
  if (problem) {
    showError(problem);
    return null;
  }
  return {
    title,
    category: field("category").value,
    language: field("language").value,
    author: field("author").value,
    summary: field("summary").value,
    body: field("body").value,
    links,
  };
}

/** @param {string | null} message */
function showError(message) {
  errorBox.hidden = !message;
  errorBox.textContent = message || "";
}

// ---------------------------------------------------------------- the article on screen

function coverId() {
  if (!article) return null;
  if (article.cover_upload_id) return article.cover_upload_id;
  const first = (article.media || []).find((/** @type {any} */ m) => m.kind === "image");
  return first ? first.upload_id : null;
}

function drawPreview() {
  const { links } = parseLinks(field("links").value);
  const category = t("articles.category." + field("category").value);
  const author = field("author").value.trim();
  const summary = field("summary").value.trim();
  clear(preview).append(
    el("p", { class: "art-meta" }, category, author ? " · " + author : ""),
    el("h1", { class: "art-title", text: field("title").value || t("articles.untitled") }),
    summary ? el("p", { class: "art-lead", text: summary }) : "",
    el("div", { class: "art-body" }, renderBody(field("body").value)),
    ...renderMedia(article ? article.media || [] : []),
    renderLinks(links) || "",
  );
}

/** @param {any} m */
function mediaRow(m) {
  const cover = m.upload_id === coverId();
  const thumb = m.kind === "image"
    ? el("img", { src: m.url, alt: "", class: "art-thumb" })
    : el("span", { class: "art-thumb art-thumb-icon", "aria-hidden": "true", text: m.kind === "video" ? "▶" : "PDF" });
  return el("li", { class: "art-media-item", dataset: { testid: "medium", kind: m.kind, uploadId: String(m.upload_id) } },
    thumb,
    el("div", { class: "cell-stack art-media-text" },
      el("a", { href: m.url, target: "_blank", rel: "noopener", text: m.filename || t("articles.file_unnamed") }),
      el("span", { class: "muted", text: t("articles.kind." + m.kind) + " · " + size(m.size) + (m.caption ? " · " + m.caption : "") }),
      cover ? el("span", { class: "badge badge-info", dataset: { testid: "cover" } }, t("articles.cover")) : null),
    el("div", { class: "btn-group" },
      m.kind === "image" && !cover
        ? el("button", { class: "btn btn-sm", type: "button", onclick: () => change({ cover_upload_id: m.upload_id }) }, t("articles.make_cover"))
        : null,
      el("button", { class: "btn btn-sm btn-danger", type: "button", dataset: { testid: "remove-medium" }, onclick: () => removeMedium(m) }, t("articles.remove"))));
}

/** @param {any} a the article as GET /api/v1/articles/{id} answers it */
function show(a) {
  article = a;
  articleId = a.id;
  field("title").value = a.title;
  field("category").value = a.category;
  field("language").value = a.language;
  field("author").value = a.author || "";
  field("summary").value = a.summary || "";
  field("body").value = a.body || "";
  field("links").value = linksText(a.links);
  byId("editor-heading").textContent = t("articles.edit_title");
  clear(byId("state-line")).append(
    el("span", { dataset: { testid: "state", value: a.state } }, stateBadge(a.state)),
    el("span", { class: "muted" },
      a.published_at ? " " + t("articles.first_published", { at: dateTime(a.published_at) }) : "",
      " " + t("articles.last_saved", { at: dateTime(a.updated_at), who: a.updated_by || "—" })));
  const may = a.may || {};
  byId("publish").hidden = a.state !== "draft";
  /** @type {HTMLButtonElement} */ (byId("publish")).disabled = false;
  byId("unpublish").hidden = !may.unpublish;
  byId("delete").hidden = !may.delete;
  const view = /** @type {HTMLAnchorElement} */ (byId("view-public"));
  view.hidden = !a.public_url;
  if (a.public_url) view.href = a.public_url;
  const hint = byId("publish-hint");
  hint.hidden = !(a.state === "draft" && a.publish_refusal);
  hint.textContent = a.state === "draft" && a.publish_refusal ? t("articles.publish_needs") : "";
  byId("media-save-first").hidden = true;
  byId("media-upload").hidden = false;
  byId("media-count").textContent = t("articles.media_count_of", { n: (a.media || []).length, max: limits.media });
  const list = clear(byId("media-list"));
  for (const m of a.media || []) list.appendChild(mediaRow(m));
  drawPreview();
}

// ---------------------------------------------------------------- writes

/** @param {boolean} busy */
function busy(busy) {
  for (const b of buttons) b.disabled = busy;
}

/**
 * Send the form (and any extra fields), creating the draft first if it is new.
 * @param {Record<string, unknown>} [extra]
 */
async function save(extra) {
  const body = payload();
  if (!body) return false;
  busy(true);
  try {
    if (articleId === null) {
      const made = await api("/api/v1/articles", { method: "POST", body });
      history.replaceState(null, "", "/admin/articles/" + made.id);
      show(made);
      if (!extra) {
        showError(null);
        return true;
      }
    }
    const saved = await api("/api/v1/articles/" + articleId, { method: "PATCH", body: { ...body, ...(extra || {}) } });
    show(saved);
    showError(null);
    return true;
  } catch (err) {
    const e = /** @type {any} */ (err);
    const name = e.details && e.details.field;
    showError(name ? t("articles.field_error", { field: tOr("articles.field." + name, name), message: e.message }) : e.message);
    return false;
  } finally {
    busy(false);
  }
}

/** @param {Record<string, unknown>} body a change that needs no form (cover, state) */
async function change(body) {
  busy(true);
  try {
    show(await api("/api/v1/articles/" + articleId, { method: "PATCH", body }));
    return true;
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
    return false;
  } finally {
    busy(false);
  }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (await save()) toast(t("articles.saved"));
});
byId("publish").addEventListener("click", async () => {
  if (await save({ state: "published" })) toast(t("articles.published"));
});
byId("unpublish").addEventListener("click", async () => {
  if (await change({ state: "draft" })) toast(t("articles.unpublished"));
});
form.addEventListener("input", drawPreview);

// ---------------------------------------------------------------- delete a draft
const deleteDialog = /** @type {HTMLDialogElement} */ (byId("delete-dialog"));
byId("delete").addEventListener("click", () => {
  byId("delete-text").textContent = t("articles.delete_question", { title: article ? article.title : "" });
  deleteDialog.showModal();
});
byId("delete-cancel").addEventListener("click", () => deleteDialog.close());
byId("delete-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const confirm = /** @type {HTMLButtonElement} */ (byId("delete-confirm"));
  confirm.disabled = true;
  try {
    await api("/api/v1/articles/" + articleId, { method: "DELETE" });
    location.href = "/admin/articles";
  } catch (err) {
    confirm.disabled = false;
    toast(/** @type {Error} */ (err).message, "error");
  }
});

// ---------------------------------------------------------------- media

/** @param {any} m */
async function removeMedium(m) {
  try {
    await api("/api/v1/articles/" + articleId + "/media/" + m.upload_id, { method: "DELETE" });
    show(await api("/api/v1/articles/" + articleId));
    toast(t("articles.removed", { name: m.filename || "" }));
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  }
}

/**
 * Why the page refuses *file* before sending it (null: send it; the server checks again).
 * @param {File} file
 */
function refusal(file) {
  if (file.type && !TYPES.includes(file.type)) return t("articles.upload_type");
  const image = file.type.startsWith("image/");
  const mb = image ? limits.image_mb : limits.file_mb;
  if (file.size > mb * 1024 * 1024) return t("articles.upload_too_big", { mb });
  return null;
}

/**
 * The server's refusal of an upload, in the page's words.
 * @param {number} status
 * @param {any} body the error shape, when the answer was JSON
 * @param {File} file
 */
function uploadError(status, body, file) {
  const err = (body && body.error) || {};
  if (status === 413) return t("articles.upload_too_big", { mb: file.type.startsWith("image/") ? limits.image_mb : limits.file_mb });
  if (status === 415) return t("articles.upload_type");
  if (status === 0) return t("articles.upload_network");
  return err.message || "HTTP " + status;
}

/**
 * Send one file with its progress on its own row; resolves when the server has answered.
 * @param {File} file
 * @param {string} caption
 */
function upload(file, caption) {
  const bar = el("progress", { max: "100", value: "0" });
  const status = el("span", { class: "muted", text: t("articles.uploading") });
  const row = el("li", { class: "art-upload", dataset: { testid: "upload", name: file.name } },
    el("span", { class: "art-upload-name", text: file.name + " · " + size(file.size) }), bar, status);
  byId("uploads").appendChild(row);
  /** @param {string} message */
  const fail = (message) => {
    row.classList.add("art-upload-failed");
    row.dataset.state = "failed";
    bar.remove();
    status.className = "field-error";
    status.textContent = message;
  };
  const early = refusal(file);
  if (early) {
    fail(early);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/articles/" + articleId + "/media");
    xhr.setRequestHeader("Accept", "application/json");
    const token = csrfToken();
    if (token) xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) bar.value = Math.round((100 * ev.loaded) / ev.total);
    });
    xhr.addEventListener("load", () => {
      /** @type {any} */
      let body;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null; // not JSON: a proxy's page; the status says enough
      }
      if (xhr.status === 201) {
        bar.value = 100;
        row.dataset.state = "done";
        status.textContent = t("articles.uploaded");
        setTimeout(() => row.remove(), 1500);
        resolve(true);
      } else {
        fail(uploadError(xhr.status, body, file));
        resolve(false);
      }
    });
    xhr.addEventListener("error", () => {
      fail(uploadError(0, null, file));
      resolve(false);
    });
    const data = new FormData();
    if (caption) data.append("caption", caption);
    data.append("file", file, file.name);
    xhr.send(data);
  });
}

const picker = /** @type {HTMLInputElement} */ (byId("media-file"));
picker.addEventListener("change", async () => {
  const files = Array.from(picker.files || []);
  const captionInput = /** @type {HTMLInputElement} */ (byId("media-caption"));
  const caption = captionInput.value.trim();
  picker.value = "";
  if (!files.length || articleId === null) return;
  let stored = 0;
  for (const file of files) if (await upload(file, caption)) stored += 1;
  if (stored) {
    captionInput.value = "";
    try {
      show(await api("/api/v1/articles/" + articleId));
    } catch (err) {
      toast(/** @type {Error} */ (err).message, "error");
    }
  }
});

// ---------------------------------------------------------------- start
async function start() {
  if (articleId !== null) {
    try {
      show(await api("/api/v1/articles/" + articleId));
    } catch (err) {
      errorState(byId("editor"), /** @type {any} */ (err));
    }
  } else {
    clear(byId("state-line")).append(el("span", { dataset: { testid: "state", value: "new" } }, stateBadge("draft")),
      el("span", { class: "muted", text: " " + t("articles.not_saved") }));
    drawPreview();
  }
  document.body.dataset.ready = "1";
}
start();
