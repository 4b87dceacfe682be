// @ts-check
/* Registering a cylinder (建档) from the phone (/m, docs/ARCHITECTURE.md §1, §8).

   For the roles that register (the page config's `register_roles`, from
   server.domain.registration): scan the QR code (its /q/ URL gives the barcode; any other
   code is taken as the tag) or type the tag, fill the form, send POST /api/v1/cylinders.
   The owner list is the caller's companies scope (a company admin sees its own company
   only). Fields a role may not state (a company admin: inspection findings, whose dates the
   server derives) are left out of the form (`register_hidden`). As one types, the server
   says whether the tag is free, taken or voided for ever by a scrapping
   (GET /api/v1/cylinders/tag-check) and which next inspection and scrap dates the rules
   give (GET /api/v1/cylinders/preview): the page computes no date itself (one rule, one
   place). A refusal is shown under the field it names (details.field), in words. */
import { api } from "/static/js/lib/api.js";
import { config } from "/static/js/lib/config.js";
import { byId, clear, el } from "/static/js/lib/dom.js";
import { t, tOr } from "/static/js/lib/i18n.js";
import { Scanner } from "./scan.js";

const PREVIEW_DEBOUNCE_MS = 400;
const PREVIEW_URL = "/api/v1/cylinders/preview";
const TAG_CHECK_URL = "/api/v1/cylinders/tag-check";
const DATE_FIELDS = ["manufacture_date", "last_inspection_date", "spec"];
/** Fields sent as numbers (strict JSON decoding on the server). */
const NUMBERS = new Set(["owner_company_id", "tare_kg"]);
/** Fields a role may not state at registration (server.domain.registration). */
const HIDDEN_FOR = /** @type {Record<string, string[]>} */ (config.register_hidden || {});

/** What the registration view did (tests read it through window.__m.register). */
export const shown = { created: /** @type {number | null} */ (null), refused: /** @type {string | null} */ (null), owners: 0 };

/** @param {{role?: string} | null} user */
export function mayRegister(user) {
  return !!user && (config.register_roles || []).includes(user.role);
}

const form = /** @type {HTMLFormElement} */ (byId("register-form"));
const submit = /** @type {HTMLButtonElement} */ (byId("register-submit"));
const tagInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("tag"));
const barcodeInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("barcode"));
const ownerSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("owner_company_id"));
const outcome = byId("register-result");
const formError = byId("register-error");

/** @param {string} name */
const errorNode = (name) => /** @type {HTMLElement | null} */ (form.querySelector('[data-error-for="' + name + '"]'));

function clearErrors() {
  form.querySelectorAll("[data-error-for]").forEach((n) => { n.textContent = ""; });
  form.querySelectorAll(".m-invalid").forEach((n) => n.classList.remove("m-invalid"));
  formError.textContent = "";
}

/**
 * A readable message for a refusal: the platform's code (and field) in the page's
 * language where one is known, the server's own words otherwise.
 * @param {any} err an ApiError
 * @param {string} field
 */
function readable(err, field) {
  const reason = err.details && err.details.reason ? String(err.details.reason) : "";
  const why = reason ? tOr("register.tag." + reason, "") : "";
  if (field === "tag" && why) return why;
  const specific = tOr("register.error." + err.code + "." + field, "");
  if (specific) return specific;
  const general = tOr("register.error." + err.code, "");
  const words = String(err.message || "").replace(/^[\w.$[\]]+:\s*/, "");
  return general ? general + (words ? " (" + words + ")" : "") : words || t("register.failed");
}

/** @param {any} err */
function showError(err) {
  const field = err && err.details && typeof err.details.field === "string" ? err.details.field.replace(/^\$\./, "") : "";
  const name = field === "owner_code" ? "owner_company_id" : field;
  const node = name ? errorNode(name) : null;
  shown.refused = (err && err.code ? err.code : "error") + (name ? ":" + name : "");
  if (node) {
    node.textContent = readable(err, name);
    const input = /** @type {HTMLElement | null} */ (form.elements.namedItem(name));
    if (input) { input.classList.add("m-invalid"); input.focus(); }
  } else {
    formError.textContent = err && err.status ? readable(err, name) : t("register.offline");
  }
}

/** The form as the API's body: empty fields left out, numbers as numbers. */
function body() {
  /** @type {Record<string, unknown>} */
  const out = {};
  new FormData(form).forEach((v, k) => {
    const s = String(v).trim();
    if (s === "") return;
    out[k] = NUMBERS.has(k) ? Number(s) : s;
  });
  return out;
}

// ------------------------------------------------------------------ derived dates
const derived = byId("register-derived");
const derivedHint = () => clear(derived).appendChild(el("p", { class: "m-muted", text: t("register.derived_hint") }));
/** @param {any} c the archive (or a preview) with next_inspection_date and scrap_date */
function showDerived(c) {
  clear(derived).appendChild(el("dl", { class: "m-dl" },
    el("dt", { text: t("field.next_inspection_date") }), el("dd", { id: "derived-next", text: c.next_inspection_date || "—" }),
    el("dt", { text: t("field.scrap_date") }), el("dd", { id: "derived-scrap", text: c.scrap_date || "—" }),
    c.compliance ? el("dt", { text: t("field.compliance") }) : null,
    c.compliance ? el("dd", {}, el("span", { class: "badge " + c.compliance, text: t("compliance." + c.compliance) })) : null));
}

let previewTimer = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
let previewSeq = 0;
function previewSoon() {
  if (previewTimer) clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, PREVIEW_DEBOUNCE_MS);
}
function preview() {
  const b = body();
  DATE_FIELDS.forEach((f) => { const n = errorNode(f); if (n) n.textContent = ""; });
  if (!b.manufacture_date) { derivedHint(); return; }
  const seq = ++previewSeq;
  api(PREVIEW_URL, { query: { manufacture_date: b.manufacture_date, last_inspection_date: b.last_inspection_date, spec: b.spec } })
    .then((res) => { if (seq === previewSeq) showDerived(res); })
    .catch((err) => {
      if (seq !== previewSeq) return;
      derivedHint();
      const field = err.details && err.details.field;
      const node = field ? errorNode(String(field)) : null;
      if (node && err.status === 400) node.textContent = readable(err, String(field));
    });
}

// ------------------------------------------------------------------ the tag as one types
let tagTimer = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
function checkTagSoon() {
  if (tagTimer) clearTimeout(tagTimer);
  tagTimer = setTimeout(() => {
    const tag = tagInput.value.trim();
    const node = errorNode("tag");
    if (!node) return;
    if (!tag) { node.textContent = ""; return; }
    api(TAG_CHECK_URL, { query: { tag } }).then((res) => {
      if (tagInput.value.trim() !== tag) return;
      node.textContent = res.available ? "" : tOr("register.tag." + res.reason, t("register.tag.taken"));
    }).catch(() => { /* the submit says it anyway */ });
  }, PREVIEW_DEBOUNCE_MS);
}

// ------------------------------------------------------------------ setup and submit
let owners = /** @type {Promise<void> | null} */ (null);
function loadOwners() {
  if (owners) return owners;
  owners = api("/api/v1/companies", { query: { page_size: config.page_size_max } }).then((env) => {
    const items = env.items || [];
    shown.owners = items.length;
    clear(ownerSelect);
    if (items.length !== 1) ownerSelect.appendChild(el("option", { value: "", text: t("register.owner_pick") }));
    for (const c of items) ownerSelect.appendChild(el("option", { value: String(c.id), text: c.name + " (" + c.code + ")" }));
  }).catch(() => { owners = null; formError.textContent = t("register.owners_failed"); });
  return owners;
}

/** Called when the tab opens: the owner list, and the fields of this role. @param {{role: string}} user */
export function opened(user) {
  const hidden = new Set(HIDDEN_FOR[user.role] || []);
  form.querySelectorAll("[data-field]").forEach((n) => {
    const name = String(/** @type {HTMLElement} */ (n).dataset.field);
    const off = hidden.has(name);
    /** @type {HTMLElement} */ (n).hidden = off;
    n.querySelectorAll("input, select").forEach((i) => { /** @type {HTMLInputElement} */ (i).disabled = off; });
  });
  loadOwners();
  previewSoon();
}

form.addEventListener("input", (ev) => {
  const target = /** @type {HTMLInputElement} */ (ev.target);
  const node = errorNode(target.name);
  if (node && target.name !== "tag") node.textContent = "";
  target.classList.remove("m-invalid");
  if (target.name === "tag") checkTagSoon();
  if (DATE_FIELDS.includes(target.name)) previewSoon();
});
form.addEventListener("change", (ev) => {
  const name = /** @type {HTMLInputElement} */ (ev.target).name;
  if (DATE_FIELDS.includes(name)) previewSoon();
});

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  clearErrors();
  clear(outcome);
  submit.disabled = true;
  submit.textContent = t("register.sending");
  api("/api/v1/cylinders", { method: "POST", body: body() }).then((c) => {
    shown.created = c.id;
    shown.refused = null;
    showDerived(c);
    outcome.appendChild(el("section", { class: "m-card m-done", id: "register-done" },
      el("h2", { text: t("register.done", { tag: c.tag }) }),
      el("dl", { class: "m-dl" },
        el("dt", { text: t("field.owner") }), el("dd", { text: c.owner_name || "" }),
        el("dt", { text: t("field.next_inspection_date") }), el("dd", { id: "done-next", text: c.next_inspection_date }),
        el("dt", { text: t("field.scrap_date") }), el("dd", { id: "done-scrap", text: c.scrap_date }),
        el("dt", { text: t("field.compliance") }), el("dd", {}, el("span", { class: "badge " + c.compliance, text: t("compliance." + c.compliance) }))),
      el("p", { class: "m-more" }, el("a", { href: "/cylinders/" + c.id, text: t("lookup.full_archive") }))));
    form.reset();
    if (ownerSelect.options.length === 1) ownerSelect.selectedIndex = 0;
    derivedHint();
    outcome.scrollIntoView({ block: "start" });
  }).catch(showError).finally(() => {
    submit.disabled = false;
    submit.textContent = t("register.submit");
  });
});

export const scanner = new Scanner(byId("register-scan-btn"), /** @type {HTMLVideoElement} */ (byId("register-video")),
  ({ code, fromQr }) => {
    const input = fromQr ? barcodeInput : tagInput;
    input.value = code;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  },
  (message) => { formError.textContent = message; });
