// @ts-check
/* Public QR page: what a household may know about the cylinder in front of it (GET
   /api/v1/public/cylinders/{code}: owner, status label, last fill, next inspection — no
   personal data), the bureau's safety tips, and the complaint form. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";

const root = byId("public-root");
const code = String(config.code);

/**
 * @param {string} label
 * @param {string | null | undefined} value
 */
const row = (label, value) => el("div", {}, el("dt", { text: t(label) }), el("dd", { text: value || "—" }));

/** @param {any} c */
function render(c) {
  clear(root);
  root.appendChild(el("section", { class: "public-status", dataset: { testid: "public-status", compliance: c.compliance } },
    el("div", { class: "muted", text: t("public.status") }),
    el("div", { class: "status-word status-" + c.compliance, text: c.status_label }),
    el("div", { class: "muted mono", text: c.barcode || c.tag })));
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
  if (c.compliance !== "ok" && c.compliance !== "scrap_due") {
    root.appendChild(el("div", { class: "public-card alert-box " + (c.compliance === "inspection_due" ? "alert-warn" : "alert-error"), role: "alert", text: t("public.warning." + c.compliance) }));
  }
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

api("/api/v1/public/articles", { query: { lang }, noRedirect: true })
  .then((res) => {
    const items = res.items || [];
    if (!items.length) return;
    const list = clear(byId("tips"));
    for (const a of items) list.appendChild(el("li", {}, el("b", { text: a.title }), el("br"), a.body));
  })
  .catch(() => { /* the built-in tips stay */ });

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
    await api("/api/v1/public/complaints", { method: "POST", body, noRedirect: true });
    form.reset();
    status.appendChild(el("div", { class: "alert-box alert-ok", dataset: { testid: "complaint-ok" }, text: t("public.complaint_thanks") }));
  } catch (err) {
    const e = /** @type {{status?: number, message: string}} */ (err);
    const message = e.status === 429 ? t("public.rate_limited") : t("error.load_failed") + " " + e.message;
    status.appendChild(el("div", { class: "alert-box alert-error", text: message }));
  } finally {
    btn.disabled = false;
  }
});
