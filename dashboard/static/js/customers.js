// @ts-check
/* Real-name customers (GET/POST/PATCH /api/v1/customers): search by name, phone, account or
   masked ID number; a company admin (and the admin) opens, changes and closes accounts.
   The full ID number exists only in the form's field until it is sent: the API keeps a
   masked form and a keyed hash, and this page never shows it, keeps it, or puts it in a URL
   (a full number typed into the search becomes its masked form before anything is sent). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { date, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { badge, toast } from "./lib/ui.js";

const FULL_ID = /^[0-9]{17}[0-9Xx]$/; // GB 11643 resident ID number: 17 digits and a check character
const MASK_HEAD = 6; // the masked form keeps the region code (first 6) ...
const MASK_TAIL = 4; // ... and the last 4 characters, as server/api/customers.py stores it

/** @param {string} number a full ID number */
function masked(number) {
  const n = number.toUpperCase();
  return n.slice(0, MASK_HEAD) + "*".repeat(n.length - MASK_HEAD - MASK_TAIL) + n.slice(-MASK_TAIL);
}

/** @type {Record<string, string>} */
const districtNames = {};
for (const d of config.districts || []) districtNames[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;
/** @type {Record<string, string>} */
const companies = {};
for (const c of config.companies || []) companies[c.id] = c.name;

// ---------------------------------------------------------------- search: never a full ID number
const searchForm = /** @type {HTMLFormElement} */ (byId("search-form"));
const searchBox = /** @type {HTMLInputElement} */ (searchForm.elements.namedItem("q"));
const maskSearch = () => {
  const v = searchBox.value.trim();
  if (FULL_ID.test(v)) searchBox.value = masked(v);
};
// registered before listPage's own listener, so it runs first
searchForm.addEventListener("submit", maskSearch);
{
  const params = new URLSearchParams(location.search);
  const q = params.get("q");
  if (q && FULL_ID.test(q.trim())) {
    params.set("q", masked(q.trim()));
    history.replaceState(null, "", location.pathname + "?" + params.toString());
  }
}

/** Opens the account form (set below where the form exists: the roles that edit). */
let openForm = /** @type {(c: any) => void} */ (() => {});
/** Opens the closing form. */
let openClose = /** @type {(c: any) => void} */ (() => {});

/**
 * @param {any} c
 * @param {HTMLButtonElement} btn
 */
async function reopen(c, btn) {
  btn.disabled = true;
  try {
    await api("/api/v1/customers/" + c.id, { method: "PATCH", body: { closed_on: null } });
    toast(t("customers.reopened", { name: c.name }));
    page.reload();
  } catch (err) {
    btn.disabled = false;
    toast(/** @type {Error} */ (err).message, "error");
  }
}

/** @param {any} c */
function actions(c) {
  if (!config.can_edit) return "—";
  const edit = el("button", { class: "btn btn-sm", type: "button", dataset: { action: "edit" }, onclick: () => openForm(c) }, t("customers.edit"));
  /** @type {HTMLButtonElement} */
  let state;
  if (c.closed_on) {
    state = el("button", { class: "btn btn-sm", type: "button", dataset: { action: "reopen" } }, t("customers.reopen"));
    state.addEventListener("click", () => reopen(c, state));
  } else {
    state = el("button", { class: "btn btn-sm", type: "button", dataset: { action: "close" }, onclick: () => openClose(c) }, t("customers.close"));
  }
  return el("div", { class: "btn-group" }, edit, state);
}

/** @param {any} c */
function stateCell(c) {
  if (c.closed_on) {
    return el("div", { class: "cell-stack" }, badge("neutral", t("customers.state.closed")), el("span", { class: "muted", text: date(c.closed_on) }));
  }
  return badge("ok", t("customers.state.open"));
}

const page = listPage({
  endpoint: "/api/v1/customers",
  emptyTitle: "customers.empty",
  emptyHint: config.can_edit ? "customers.empty_hint_edit" : "customers.empty_hint",
  rowAttrs: (c) => ({ dataset: { account: c.account_no, state: c.closed_on ? "closed" : "open" } }),
  columns: [
    { label: "customers.account_no", render: (c) => el("span", { class: "mono", text: c.account_no }), sort: (c) => c.account_no },
    { label: "customers.name", render: (c) => el("b", { text: c.name }), sort: (c) => c.name },
    { label: "customers.kind", render: (c) => tOr("customers.kind." + c.kind, c.kind), sort: (c) => c.kind },
    { label: "customers.phone", render: (c) => el("span", { class: "mono", text: text(c.phone) }) },
    { label: "customers.id_number", render: (c) => el("span", { class: "mono", dataset: { testid: "id-masked" }, text: text(c.id_number_masked) }) },
    { label: "customers.address", render: (c) => el("div", { class: "cell-stack" }, text(c.address),
      c.district_code ? el("span", { class: "muted", text: districtNames[c.district_code] || c.district_code }) : null) },
    { label: "customers.company", render: (c) => text(companies[c.company_id]), sort: (c) => companies[c.company_id] },
    { label: "customers.opened_on", render: (c) => date(c.opened_on), sort: (c) => c.opened_on },
    { label: "customers.state", render: stateCell, sort: (c) => c.closed_on || "" },
    { label: "common.actions", render: actions },
  ],
});

// ---------------------------------------------------------------- open / change an account
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("customer-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("customer-form"));
  const errorBox = byId("customer-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("customer-save"));
  const idHint = byId("customer-id-hint");
  const idInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("id_number"));
  const TEXT_FIELDS = ["account_no", "name", "kind", "phone", "address", "district_code", "opened_on"];
  /** @type {any} */
  let editing = null;

  openForm = (c) => {
    editing = c;
    form.reset();
    errorBox.hidden = true;
    for (const name of TEXT_FIELDS) {
      const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name));
      if (field && c && c[name] !== null && c[name] !== undefined) field.value = String(c[name]).slice(0, name === "opened_on" ? 10 : undefined);
    }
    form.querySelectorAll("[data-new-only]").forEach((node) => {
      const box = /** @type {HTMLElement} */ (node);
      box.hidden = Boolean(c);
      box.querySelectorAll("select, input").forEach((f) => { /** @type {HTMLInputElement} */ (f).disabled = Boolean(c); });
    });
    idHint.textContent = c && c.id_number_masked ? t("customers.id_hint_keep", { masked: c.id_number_masked }) : t("customers.id_hint");
    byId("customer-dialog-title").textContent = c ? t("customers.edit_title", { account: c.account_no }) : t("customers.create");
    dialog.showModal();
  };
  byId("new-customer").addEventListener("click", () => openForm(null));
  byId("customer-cancel").addEventListener("click", () => { idInput.value = ""; dialog.close(); });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const v = formValues(form);
    /** @type {Record<string, unknown>} */
    const body = {};
    for (const name of TEXT_FIELDS) {
      const value = v[name] ? v[name].trim() : null;
      if (editing) {
        const before = editing[name] === undefined || editing[name] === null ? null : String(editing[name]).slice(0, name === "opened_on" ? 10 : undefined);
        if (before !== value && !(name === "opened_on" && value === null)) body[name] = value;
      } else if (value !== null) {
        body[name] = value;
      }
    }
    if (v.id_number) body.id_number = v.id_number.trim().toUpperCase();
    if (!editing && v.company_id) body.company_id = Number(v.company_id);
    if (editing && !Object.keys(body).length) {
      dialog.close();
      return;
    }
    saveBtn.disabled = true;
    try {
      if (editing) await api("/api/v1/customers/" + editing.id, { method: "PATCH", body });
      else await api("/api/v1/customers", { method: "POST", body });
      idInput.value = "";
      dialog.close();
      toast(t(editing ? "customers.saved" : "customers.created", { name: String(v.name || "") }));
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });

  // ---------------------------------------------------------------- closing an account
  const closeDialog = /** @type {HTMLDialogElement} */ (byId("close-dialog"));
  const closeForm = /** @type {HTMLFormElement} */ (byId("close-form"));
  const closeError = byId("close-form-error");
  const closeBtn = /** @type {HTMLButtonElement} */ (byId("close-save"));
  const closeDate = /** @type {HTMLInputElement} */ (closeForm.elements.namedItem("closed_on"));
  /** @type {any} */
  let closing = null;
  openClose = (c) => {
    closing = c;
    closeForm.reset();
    closeError.hidden = true;
    const now = new Date();
    closeDate.value = now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0") + "-" + String(now.getDate()).padStart(2, "0");
    closeDate.max = closeDate.value;
    closeDate.min = c.opened_on ? String(c.opened_on).slice(0, 10) : "";
    byId("close-who").textContent = t("customers.close_who", { name: c.name, account: c.account_no });
    closeDialog.showModal();
  };
  byId("close-cancel").addEventListener("click", () => closeDialog.close());
  closeForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!closeForm.reportValidity() || !closing) return;
    closeBtn.disabled = true;
    try {
      await api("/api/v1/customers/" + closing.id, { method: "PATCH", body: { closed_on: closeDate.value } });
      closeDialog.close();
      toast(t("customers.closed", { name: closing.name }));
      page.reload();
    } catch (err) {
      closeError.hidden = false;
      closeError.textContent = /** @type {Error} */ (err).message;
    } finally {
      closeBtn.disabled = false;
    }
  });
}
