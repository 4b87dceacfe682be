// @ts-check
/* Registration (建档) of one cylinder at a time: a form over POST /api/v1/cylinders.

   As the form is filled in, the platform is asked — never second-guessed:
   - the dates the registration would store (GET /api/v1/cylinders/preview: the domain's
     rules and the registration's own checks; nothing is computed here);
   - whether the tag is free, taken or voided (GET /api/v1/cylinders/tag-check).
   After a registration the form keeps what a series shares (owner, model, manufacture date,
   manufacturer, ...) and waits for the next tag; a refusal is shown next to the field the
   server names (details.field), in the page's language where the reason is known. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { complianceBadge, toast } from "./lib/ui.js";

const form = /** @type {HTMLFormElement} */ (byId("reg-form"));
const submitBtn = /** @type {HTMLButtonElement} */ (byId("reg-submit"));
const formError = byId("reg-form-error");
const tagInput = /** @type {HTMLInputElement} */ (byId("reg-tag"));
const tagState = byId("reg-tag-state");
const derivedBox = byId("reg-derived");
const createdBox = byId("reg-created");
const recentList = byId("reg-recent");
const ownerSelect = /** @type {HTMLSelectElement} */ (byId("reg-owner_company_id"));
const siteSelect = /** @type {HTMLSelectElement} */ (byId("reg-location_site_id"));
const specSelect = /** @type {HTMLSelectElement} */ (byId("reg-spec"));
const volumeInput = /** @type {HTMLInputElement} */ (byId("reg-volume_l"));

/** A pause in typing before the server is asked (a keystroke each would only load it). */
const TYPING_PAUSE_MS = 300;

/** What a series of cylinders shares: kept after each registration for the next one. */
const SERIES = new Set([
  "owner_company_id", "spec", "manufacture_date", "manufacturer", "medium", "valve_type",
  "location_site_id", "last_inspection_date", "inspection_count",
]);
/** Fields sent as JSON numbers (ids and counts are whole; measures are decimals). */
const NUMERIC = new Set(["owner_company_id", "location_site_id", "inspection_count", "volume_l", "tare_kg", "wall_thickness_mm"]);
/** Fields that decide the derived dates (the preview is asked again when one changes). */
const DATE_INPUTS = ["manufacture_date", "last_inspection_date", "spec"];

/** @type {Record<string, {spec: string, volume_l: number, max_fill_kg: number}>} */
const models = {};
for (const m of config.models || []) models[m.spec] = m;

/**
 * Server reasons known by a phrase of their message → this page's words for them. Anything
 * else is shown as the server wrote it (never hidden).
 * @type {[string, string][]}
 */
const PHRASES = [
  ["missing required field", "registration.error.required"],
  ["give exactly one of owner", "registration.error.required"],
  ["matching regex", "registration.error.chars"],
  ["letters, digits", "registration.error.chars"],
  ["is in the future", "registration.error.future"],
  ["is before manufacture_date", "registration.error.before_manufacture"],
  ["must be after manufacture_date", "registration.error.after_manufacture"],
  ["must be after last_inspection_date", "registration.error.after_last"],
  ["unknown model", "registration.error.unknown_spec"],
  ["not your company", "registration.error.owner"],
  ["no such company", "registration.error.owner"],
  ["no such site", "registration.error.site"],
  ["already exists", "registration.error.exists"],
  ["may not state", "registration.error.forbidden"],
];

/**
 * The words for a refusal of the platform's one error shape (lib/api.js ApiError).
 * @param {any} err
 */
function reasonText(err) {
  const details = (err && err.details) || {};
  if (details.reason === "voided") return t("registration.tag.voided");
  if (details.reason === "taken") return t("registration.tag.taken");
  const message = String((err && err.message) || err);
  for (const [phrase, key] of PHRASES) if (message.includes(phrase)) return t(key);
  const field = details.field;
  return field && message.startsWith(field + ": ") ? message.slice(field.length + 2) : message;
}

// ---------------------------------------------------------------- errors next to fields

/** @param {string} name */
function errorSlot(name) {
  return document.getElementById("reg-" + name + "-error");
}

/** @param {string} name */
function control(name) {
  return /** @type {HTMLInputElement | HTMLSelectElement | null} */ (form.elements.namedItem(name));
}

/**
 * Show *text* (and an optional link) as the error of field *name*; false if the form has no
 * such field.
 * @param {string} name
 * @param {string} text
 * @param {HTMLElement | null} [extra]
 */
function showError(name, text, extra) {
  const slot = errorSlot(name);
  if (!slot) return false;
  clear(slot).append(text);
  if (extra) slot.append(" ", extra);
  slot.hidden = false;
  control(name)?.setAttribute("aria-invalid", "true");
  return true;
}

/** @param {string} name */
function clearError(name) {
  const slot = errorSlot(name);
  if (slot) {
    clear(slot);
    slot.hidden = true;
  }
  control(name)?.removeAttribute("aria-invalid");
}

function clearErrors() {
  form.querySelectorAll(".field-error").forEach((node) => {
    const name = node.id.replace(/^reg-/, "").replace(/-error$/, "");
    clearError(name);
  });
  formError.hidden = true;
  clear(formError);
}

/** A link to a cylinder the caller may open (the API names it only then). @param {number | null} id */
function cylinderLink(id) {
  return id ? el("a", { href: "/cylinders/" + id, text: t("registration.tag.open"), dataset: { testid: "tag-cylinder-link" } }) : null;
}

/**
 * Call *fn* once typing has paused.
 * @param {() => void} fn
 */
function afterPause(fn) {
  /** @type {number | undefined} */
  let timer;
  return () => {
    clearTimeout(timer);
    timer = window.setTimeout(fn, TYPING_PAUSE_MS);
  };
}

// ---------------------------------------------------------------- the tag: free, taken or voided

let tagAsked = 0;

async function checkTag() {
  const tag = tagInput.value.trim();
  const asked = ++tagAsked;
  clearError("tag");
  tagState.className = "tag-state muted";
  if (!tag) {
    tagState.textContent = "";
    return;
  }
  tagState.textContent = t("registration.tag.checking");
  try {
    const r = await api("/api/v1/cylinders/tag-check", { query: { tag } });
    if (asked !== tagAsked) return; // an older answer than the tag typed since
    tagState.textContent = "";
    if (r.available) {
      tagState.className = "tag-state ok";
      tagState.textContent = t("registration.tag.available");
    } else {
      showError("tag", t("registration.tag." + r.reason), cylinderLink(r.cylinder_id));
    }
  } catch (err) {
    if (asked !== tagAsked) return;
    tagState.textContent = "";
    showError("tag", reasonText(err));
  }
}

// ---------------------------------------------------------------- derived dates, asked of the server

let previewAsked = 0;

/**
 * @param {string} label
 * @param {Node | string} value
 * @param {string} testid
 */
function row(label, value, testid) {
  return el("div", {}, el("dt", { text: t(label) }), el("dd", { dataset: { testid } }, value));
}

/** @param {any} r the preview's answer */
function showDerived(r) {
  const stated = (/** @type {string} */ name) => (r.derived.includes(name) ? "" : " " + t("registration.derived.stated"));
  const list = el("dl", { class: "dl-grid reg-derived" },
    row("registration.derived.next", date(r.next_inspection_date) + stated("next_inspection_date"), "derived-next"),
    row("registration.derived.scrap", date(r.scrap_date) + stated("scrap_date"), "derived-scrap"),
    row("registration.derived.compliance", complianceBadge(r.compliance), "derived-compliance"));
  clear(derivedBox).append(list);
  if (r.model) {
    derivedBox.append(el("p", { class: "muted reg-note", dataset: { testid: "derived-model" },
      text: t("registration.model", { spec: r.model.spec, volume: number(r.model.volume_l), max: number(r.model.max_fill_kg) }) }));
  }
}

/** @param {string} key @param {string} testid */
function derivedNote(key, testid) {
  clear(derivedBox).append(el("p", { class: "muted", dataset: { testid }, text: t(key) }));
}

async function preview() {
  const v = formValues(form);
  const asked = ++previewAsked;
  for (const name of DATE_INPUTS) clearError(name);
  if (!v.manufacture_date) {
    derivedNote("registration.derived_empty", "reg-derived-empty");
    return;
  }
  const query = { manufacture_date: v.manufacture_date, last_inspection_date: v.last_inspection_date, spec: v.spec };
  try {
    const r = await api("/api/v1/cylinders/preview", { query });
    if (asked !== previewAsked) return;
    showDerived(r);
  } catch (err) {
    if (asked !== previewAsked) return;
    const field = /** @type {any} */ (err).details?.field;
    if (!field || !showError(field, reasonText(err))) toast(reasonText(err), "error");
    derivedNote("registration.derived_invalid", "reg-derived-invalid");
  }
}

// ---------------------------------------------------------------- owner → its sites; model → its volume

function syncSites() {
  const owner = ownerSelect.value;
  for (const option of Array.from(siteSelect.options)) {
    if (!option.value) continue;
    option.hidden = option.dataset.company !== owner;
  }
  const chosen = siteSelect.selectedOptions[0];
  if (chosen && chosen.hidden) siteSelect.value = "";
}

function syncVolume() {
  const model = models[specSelect.value];
  volumeInput.placeholder = model ? String(model.volume_l) : "";
}

// ---------------------------------------------------------------- registering

/** The JSON body of the form: filled fields only, numbers as numbers. */
function bodyOf() {
  /** @type {Record<string, unknown>} */
  const body = {};
  for (const [name, raw] of Object.entries(formValues(form))) {
    const value = raw.trim();
    if (!value) continue;
    const n = Number(value);
    body[name] = NUMERIC.has(name) && !isNaN(n) ? n : value;
  }
  return body;
}

/** @param {any} cyl the registered cylinder */
function created(cyl) {
  const link = el("a", { href: "/cylinders/" + cyl.id, text: t("registration.open"), dataset: { testid: "created-link" } });
  clear(createdBox).append(
    el("strong", { text: t("registration.created", { tag: cyl.tag }) }), " ",
    t("registration.created_dates", { next: date(cyl.next_inspection_date), scrap: date(cyl.scrap_date) }), " ",
    link);
  createdBox.hidden = false;
  recentList.prepend(el("li", { dataset: { tag: cyl.tag } },
    el("a", { href: "/cylinders/" + cyl.id, class: "mono", text: cyl.tag }), " ",
    el("span", { class: "muted", text: cyl.spec + " · " + (cyl.owner_name || "") })));
  byId("reg-recent-empty").hidden = true;
  toast(t("registration.created", { tag: cyl.tag }));
  // ready for the next cylinder of the series
  for (const field of Array.from(form.elements)) {
    if (field instanceof HTMLInputElement && !SERIES.has(field.name)) field.value = field.defaultValue;
  }
  tagState.textContent = "";
  tagInput.focus();
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors();
  createdBox.hidden = true;
  submitBtn.disabled = true;
  try {
    created(await api("/api/v1/cylinders", { method: "POST", body: bodyOf() }));
  } catch (err) {
    const e = /** @type {any} */ (err);
    const field = e.details?.field;
    const extra = field === "tag" ? cylinderLink(e.details.cylinder_id) : null;
    if (field && showError(field, reasonText(e), extra)) {
      control(field)?.focus();
    } else {
      formError.textContent = reasonText(e);
      formError.hidden = false;
    }
    toast(t("registration.refused"), "error");
  } finally {
    submitBtn.disabled = false;
  }
});

byId("reg-clear").addEventListener("click", () => {
  form.reset();
  clearErrors();
  tagState.textContent = "";
  syncSites();
  syncVolume();
  derivedNote("registration.derived_empty", "reg-derived-empty");
  tagInput.focus();
});

// an edited field's old error no longer applies
form.addEventListener("input", (ev) => {
  const name = /** @type {HTMLInputElement} */ (ev.target).name;
  if (name && name !== "tag") clearError(name);
});
tagInput.addEventListener("input", afterPause(checkTag));
const previewSoon = afterPause(preview);
for (const name of DATE_INPUTS) {
  const node = control(name);
  if (!node) continue; // the inspection inputs are only there for roles that may state them
  node.addEventListener("input", previewSoon);
  node.addEventListener("change", previewSoon);
}
ownerSelect.addEventListener("change", syncSites);
specSelect.addEventListener("change", syncVolume);

syncSites();
syncVolume();
document.body.dataset.ready = "1";
