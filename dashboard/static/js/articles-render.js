// @ts-check
/* An article as a page shows it, built as DOM nodes: the editor's live preview
   (articles_edit.js) and the public portal (portal_article.js) draw it with these same
   functions, so what an editor sees is what a household reads.

   The text's markup is server/domain/articles.py's (its docstring is the grammar): blank
   lines separate blocks; "# " and "## " lines are headings; "- " / "* " lines a list, "1. "
   lines a numbered list; "> " lines a quotation; inside a line **bold** and
   [text](https://address). Everything else is text: nothing is ever parsed as HTML, and a
   link goes only to an http(s) address. */
import { el } from "./lib/dom.js";
import { t } from "./lib/i18n.js";
import { badge } from "./lib/ui.js";

const HEADING = /^\s*(#{1,2})\s+(.*)$/;
const BULLET = /^\s*[-*]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,3}\.\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const INLINE = /\*\*(.+?)\*\*|\[([^\]\n]+)\]\((https?:\/\/[^\s<>")]+)\)/g;
const SAFE_URL = /^https?:\/\/[^\s<>"]+$/i;

/**
 * The badge of an article's state (draft, published).
 * @param {string} state
 */
export function stateBadge(state) {
  return badge(state === "published" ? "ok" : "neutral", t("articles.state." + state));
}

/**
 * A link out of the platform: opened in a new tab, without the page's referrer.
 * @param {string} href an http(s) address (anything else is shown as text)
 * @param {string} text
 * @returns {Node}
 */
export function outLink(href, text) {
  if (!SAFE_URL.test(href)) return document.createTextNode(text);
  return el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", text });
}

/**
 * One line's inline markup as nodes.
 * @param {string} text
 * @returns {Node[]}
 */
export function inline(text) {
  /** @type {Node[]} */
  const out = [];
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    const index = m.index || 0;
    if (index > at) out.push(document.createTextNode(text.slice(at, index)));
    if (m[1] !== undefined) out.push(el("strong", { text: m[1] }));
    else out.push(outLink(m[3], m[2]));
    at = index + m[0].length;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

/**
 * An article's text as nodes (headings, paragraphs, lists, quotations).
 * @param {string} body
 * @returns {DocumentFragment}
 */
export function renderBody(body) {
  const frag = document.createDocumentFragment();
  for (const block of String(body || "").replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/)) {
    /** @type {string[]} */
    let para = [];
    /** @type {HTMLElement | null} */
    let list = null;
    /** @type {HTMLElement | null} */
    let quote = null;
    const flush = () => {
      if (para.length) frag.appendChild(el("p", {}, inline(para.join(" "))));
      para = [];
      list = null;
      quote = null;
    };
    for (const line of block.split("\n")) {
      let m;
      if ((m = HEADING.exec(line))) {
        flush();
        frag.appendChild(el(m[1].length === 1 ? "h2" : "h3", {}, inline(m[2])));
      } else if ((m = BULLET.exec(line)) || (m = NUMBERED.exec(line))) {
        const tag = BULLET.test(line) ? "ul" : "ol";
        if (para.length || quote || !list || list.tagName.toLowerCase() !== tag) {
          flush();
          list = frag.appendChild(el(tag));
        }
        list.appendChild(el("li", {}, inline(m[1])));
      } else if ((m = QUOTE.exec(line))) {
        if (para.length || list || !quote) {
          flush();
          quote = frag.appendChild(el("blockquote"));
        } else {
          quote.appendChild(document.createTextNode(" "));
        }
        quote.append(...inline(m[1]));
      } else if (line.trim()) {
        if (list || quote) flush();
        para.push(line.trim());
      }
    }
    flush();
  }
  return frag;
}

/**
 * "1.2 MB" of a number of bytes.
 * @param {number} bytes
 */
export function size(bytes) {
  if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
  return bytes + " B";
}

/**
 * @typedef {{upload_id: number, kind: string, mime: string, size: number, filename: string | null,
 *   caption: string | null, url: string, width?: number | null, height?: number | null}} Medium
 */

/**
 * A medium as the article shows it: a picture, a clip played from the platform, a download.
 * @param {Medium} m
 * @returns {HTMLElement}
 */
export function renderMedium(m) {
  const caption = m.caption ? el("figcaption", { text: m.caption }) : null;
  if (m.kind === "image") {
    return el("figure", { class: "art-figure", dataset: { testid: "article-image" } },
      el("img", { src: m.url, alt: m.caption || "", loading: "lazy", width: m.width || null, height: m.height || null }),
      caption);
  }
  if (m.kind === "video") {
    return el("figure", { class: "art-figure", dataset: { testid: "article-video" } },
      el("video", { src: m.url, controls: true, playsinline: true, preload: "metadata" }),
      caption);
  }
  const name = m.filename || t("articles.file_unnamed");
  return el("div", { class: "art-file", dataset: { testid: "article-file" } },
    el("a", { href: m.url, download: name, class: "art-file-link" }, "⬇ " + name),
    el("span", { class: "muted", text: " " + size(m.size) }),
    m.caption ? el("div", { class: "muted", text: m.caption }) : null);
}

/**
 * The media of an article in the order a reader meets them: pictures and clips, then the
 * documents to download.
 * @param {Medium[]} media
 * @returns {HTMLElement[]}
 */
export function renderMedia(media) {
  const shown = media.filter((m) => m.kind !== "file").map(renderMedium);
  const files = media.filter((m) => m.kind === "file");
  if (files.length) {
    shown.push(el("section", { class: "art-files", "aria-label": t("articles.files") },
      el("h3", { text: t("articles.files") }), files.map(renderMedium)));
  }
  return shown;
}

/**
 * The article's links (a video on another site, a related page), never embedded.
 * @param {{url: string, label?: string | null}[]} links
 * @returns {HTMLElement | null}
 */
export function renderLinks(links) {
  if (!links || !links.length) return null;
  return el("section", { class: "art-links", "aria-label": t("articles.links") },
    el("h3", { text: t("articles.links") }),
    el("ul", {}, links.map((l) => el("li", { dataset: { testid: "article-link" } }, outLink(l.url, l.label || l.url)))));
}
