// @ts-check
/* Public QR page: what a household may know about the cylinder in front of it (GET
   /api/v1/public/cylinders/{code}: owner, status label, last fill, next inspection, the last
   steps of its trajectory at site level — no personal data), the owner's order phone as a
   one-tap tel: link and its notice, the latest safety articles, a fault report with an
   optional photo (POST /api/v1/public/faults, multipart) and the complaint form; both give
   a ticket number to follow. */
import { api, csrfToken } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime } from "./lib/format.js";
import { lang, t, tOr } from "./lib/i18n.js";

const root = byId("public-root");
const code = String(config.code);
const PHOTO_MAX_MB = Number(config.photo_max_mb) || 10;
const ARTICLES_SHOWN = 3; // the latest few: the page is read standing at the door
const ARTICLE_EXCERPT = 140; // characters of an article's body on the card

/**
 * @param {string} label
 * @param {string | null | undefined} value
 */
const row = (label, value) => el("div", {}, el("dt", { text: t(label) }), el("dd", { text: value || "—" }));

/** Only a web address becomes a link (a company's notice is typed by a person). @param {unknown} url */
const webUrl = (url) => typeof url === "string" && /^https?:\/\/[^\s<>"]+$/i.test(url) ? url : null;

/** @param {any} c */
function callButton(c) {
  if (!c.order_tel || !/^tel:\+?[0-9]+$/.test(c.order_tel)) return null;
  return el("a", { class: "btn btn-primary btn-block public-call", href: c.order_tel, dataset: { testid: "order-phone" } },
    el("span", { "aria-hidden": "true", text: "☎ " }),
    t("public_qr.call", { phone: c.order_phone }));
}

/** @param {any} c */
function notice(c) {
  if (!c.notice || !c.notice.text) return null;
  const url = webUrl(c.notice.url);
  return el("section", { class: "public-card public-notice", dataset: { testid: "company-notice" }, "aria-label": t("public_qr.notice") },
    el("div", { class: "muted", text: t("public_qr.notice") + " · " + (c.owner || "") }),
    el("p", { class: "public-notice-text", text: c.notice.text }),
    url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: t("public_qr.notice_link") }) : null);
}

/** @param {any[]} steps */
function trajectory(steps) {
  const card = el("section", { class: "public-card", dataset: { testid: "trajectory" }, "aria-labelledby": "trajectory-title" },
    el("h2", { id: "trajectory-title", text: t("public_qr.trajectory") }),
    el("p", { class: "muted", text: t("public_qr.trajectory_hint") }));
  if (!steps || !steps.length) {
    card.appendChild(el("p", { class: "empty-title", dataset: { testid: "trajectory-empty" }, text: t("public_qr.trajectory_empty") }));
    return card;
  }
  const list = el("ol", { class: "public-trail" });
  for (const s of steps) {
    const where = [s.site, s.company].filter(Boolean).filter((v, i, a) => a.indexOf(v) === i).join(" · ");
    list.appendChild(el("li", { dataset: { step: s.step } },
      el("span", { class: "trail-date mono", text: date(s.date) }),
      el("b", { class: "trail-step", text: tOr("public_qr.step." + s.step, s.step) }),
      where ? el("span", { class: "trail-where", text: where }) : null));
  }
  card.appendChild(list);
  return card;
}

/** @param {any} c */
function render(c) {
  clear(root);
  root.appendChild(el("section", { class: "public-status", dataset: { testid: "public-status", compliance: c.compliance } },
    el("div", { class: "muted", text: t("public.status") }),
    el("div", { class: "status-word status-" + c.compliance, text: c.status_label }),
    el("div", { class: "muted mono", text: c.barcode })));
  if (c.compliance !== "ok" && c.compliance !== "scrap_due") {
    root.appendChild(el("div", { class: "public-card alert-box " + (c.compliance === "inspection_due" ? "alert-warn" : "alert-error"), role: "alert", text: t("public.warning." + c.compliance) }));
  }
  const call = callButton(c);
  if (call) root.appendChild(el("div", { class: "public-card public-call-card" }, call));
  const note = notice(c);
  if (note) root.appendChild(note);
  const lastFill = c.last_fill ? dateTime(c.last_fill.ts) + (c.last_fill.station ? " · " + c.last_fill.station : "") : t("public.never_filled");
  root.appendChild(el("section", { class: "public-card", "aria-label": t("public.details") },
    el("dl", {},
      row("public.owner", c.owner),
      row("cylinder.spec", c.spec + (c.volume_l ? " · " + c.volume_l + " L" : "")),
      row("cylinder.medium", c.medium),
      row("cylinder.manufacturer", c.manufacturer),
      row("cylinder.manufacture_date", date(c.manufacture_date)),
      row("public.last_fill", lastFill),
      row("cylinder.next_inspection", date(c.next_inspection_date)),
      row("cylinder.scrap_date", date(c.scrap_date)))));
  root.appendChild(trajectory(c.trajectory));
}

api("/api/v1/public/cylinders/" + encodeURIComponent(code), { query: { lang }, noRedirect: true })
  .then(render)
  .catch((err) => {
    const key = err.status === 404 ? "public.not_found" : err.status === 429 ? "public.rate_limited" : "error.load_failed";
    clear(root).appendChild(el("section", { class: "public-status", dataset: { testid: "public-status" } },
      el("div", { class: "empty-icon", "aria-hidden": "true", text: "?" }),
      el("p", { class: "empty-title", text: t(key) }),
      el("p", { class: "muted", text: t("public.not_found_hint") })));
  });

/** @param {string} body */
function excerpt(body) {
  const text = String(body || "").replace(/\s+/g, " ").trim();
  return text.length > ARTICLE_EXCERPT ? text.slice(0, ARTICLE_EXCERPT - 1) + "…" : text;
}

api("/api/v1/public/articles", { query: { lang }, noRedirect: true })
  .then((res) => {
    const items = (res.items || []).slice(0, ARTICLES_SHOWN);
    if (!items.length) return;
    const list = clear(byId("tips"));
    for (const a of items) {
      // the articles portal's page of the article (a path on this site), when there is one
      const url = typeof a.url === "string" && /^\/[^/\\]/.test(a.url) ? a.url : null;
      const title = url ? el("a", { href: url, text: a.title }) : el("b", { text: a.title });
      list.appendChild(el("li", { dataset: { testid: "article" } }, title, el("br"), a.excerpt || excerpt(a.summary || a.body)));
    }
  })
  .catch(() => { /* the built-in tips stay */ });

/**
 * The ticket line shown after a report or complaint was stored.
 * @param {string} okKey
 * @param {any} res
 */
function ticketBox(okKey, res) {
  const ticket = res && (res.ticket_display || res.ticket);
  // the complaints' public tracking page (server.api.complaints_public): a path on this site only
  const track = res && typeof res.track_url === "string" && /^\/[^/\\]/.test(res.track_url) ? res.track_url : null;
  return el("div", { class: "alert-box alert-ok", dataset: { testid: okKey === "public_qr.fault_ok" ? "fault-ok" : "complaint-ok" } },
    el("div", { text: t(okKey) }),
    ticket ? el("div", { class: "public-ticket mono", dataset: { testid: "ticket" }, text: t("public_qr.ticket", { ticket }) }) : null,
    ticket ? el("div", { class: "muted", text: t("public_qr.ticket_keep") }) : null,
    track ? el("a", { href: track, dataset: { testid: "track-link" }, text: t("public_qr.track") }) : null);
}

/** @param {{status?: number, message: string, details?: any}} e */
function failure(e) {
  if (e.status === 429) return t("public.rate_limited");
  if (e.status === 413) return t("public_qr.photo_too_large", { mb: PHOTO_MAX_MB });
  if (e.status === 415) return t("public_qr.photo_not_image");
  if (e.status === 400 && e.details && e.details.field === "photo") return t("public_qr.photo_unreadable");
  return t("error.load_failed") + " " + e.message;
}

// ---------------------------------------------------------------- fault report (multipart)

const faultForm = /** @type {HTMLFormElement} */ (byId("fault-form"));
const faultStatus = byId("fault-status");
const faultText = /** @type {HTMLTextAreaElement} */ (faultForm.elements.namedItem("text"));
const faultPhoto = /** @type {HTMLInputElement} */ (faultForm.elements.namedItem("photo"));
const faultContact = /** @type {HTMLInputElement} */ (faultForm.elements.namedItem("contact"));

/** @param {string} message */
const faultError = (message) => faultStatus.appendChild(el("div", { class: "alert-box alert-error", role: "alert", text: message }));

faultForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clear(faultStatus);
  const text = faultText.value.trim();
  if (!text) {
    faultError(t("public_qr.fault_empty"));
    faultText.focus();
    return;
  }
  const photo = faultPhoto.files && faultPhoto.files[0];
  if (photo && photo.size > PHOTO_MAX_MB * 1024 * 1024) {
    faultError(t("public_qr.photo_too_large", { mb: PHOTO_MAX_MB }));
    return;
  }
  const body = new FormData();
  body.append("code", code);
  body.append("text", text);
  const contact = faultContact.value.trim();
  if (contact) body.append("contact", contact);
  if (photo) body.append("photo", photo, photo.name);
  const btn = /** @type {HTMLButtonElement} */ (faultForm.querySelector("button[type=submit]"));
  btn.disabled = true;
  try {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    const token = csrfToken(); // a signed-in visitor's session cookie goes along: CSRF applies
    if (token) headers["X-CSRF-Token"] = token;
    const res = await fetch("/api/v1/public/faults", { method: "POST", body, headers, credentials: "same-origin" });
    const data = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json() : {};
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw { status: res.status, message: err.message || res.statusText, details: err.details };
    }
    faultForm.reset();
    faultStatus.appendChild(ticketBox("public_qr.fault_ok", data));
  } catch (err) {
    const e = /** @type {{status?: number, message: string, details?: any}} */ (err);
    faultError(e && e.status !== undefined ? failure(e) : t("error.load_failed") + " " + String(err));
  } finally {
    btn.disabled = false;
  }
});

// ---------------------------------------------------------------- complaint

const form = /** @type {HTMLFormElement} */ (byId("complaint-form"));
const status = byId("complaint-status");
const textField = /** @type {HTMLTextAreaElement} */ (form.elements.namedItem("text"));
const contactField = /** @type {HTMLInputElement} */ (form.elements.namedItem("contact"));
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = textField.value.trim();
  clear(status);
  if (!text) {
    status.appendChild(el("div", { class: "alert-box alert-error", text: t("public.complaint_empty") }));
    textField.focus();
    return;
  }
  /** @type {Record<string, string>} */
  const body = { text, code };
  const contact = contactField.value.trim();
  if (contact) body.contact = contact;
  const btn = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
  btn.disabled = true;
  try {
    const res = await api("/api/v1/public/complaints", { method: "POST", body, noRedirect: true });
    form.reset();
    status.appendChild(ticketBox("public.complaint_thanks", res));
  } catch (err) {
    const e = /** @type {{status?: number, message: string}} */ (err);
    status.appendChild(el("div", { class: "alert-box alert-error", text: failure(e) }));
  } finally {
    btn.disabled = false;
  }
});
