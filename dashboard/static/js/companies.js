// @ts-check
/* The register of companies (GET/POST/PATCH /api/v1/companies): search by code or name,
   filter by district and licence status, open a company in a detail dialog; the admin
   registers and edits companies. A company admin sees its own company (the API scopes the
   list) and keeps its contact details and the notice of the public QR page (notice_text,
   notice_url: shown there as text) current — the fields the API lets it change. Licence
   actions live on the licences page, linked from the detail dialog. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { toast } from "./lib/ui.js";

/** @type {Record<string, string>} */
const districtNames = {};
for (const d of config.districts || []) districtNames[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;

/** @param {string | null | undefined} code */
const districtName = (code) => (code ? districtNames[code] || code : "—");

/** @param {string} status a licence status (valid, suspended, revoked) */
function statusBadge(status) {
  return el("span", { class: "badge lic-badge lic-" + status, dataset: { value: status } }, t("licences.status." + status));
}

/** Opens the edit form (set below when the page has it: the admin, a company admin). */
let openForm = /** @type {(c: any) => void} */ (() => {});

/** The company admin's own company id (null for every other role). */
const user = config.user || {};
const ownCompany = user.role === "company_admin" && user.company_id ? Number(user.company_id) : null;

/** May the reader edit company *c*: the admin any, a company admin its own. @param {any} c */
const mayEdit = (c) => Boolean(config.can_edit) || (ownCompany !== null && c.id === ownCompany);

// ---------------------------------------------------------------- detail
const editFromView = document.getElementById("company-view-edit");
const view = /** @type {HTMLDialogElement} */ (byId("company-view"));
const viewFields = byId("company-view-fields");
/** @type {any} */
let viewing = null;

/** @param {any} c */
function openView(c) {
  viewing = c;
  byId("company-view-title").textContent = c.name + " (" + c.code + ")";
  /** @type {[string, Node | string][]} */
  const rows = [
    ["companies.code", el("span", { class: "mono", text: c.code })],
    ["companies.name", c.name],
    ["companies.district", districtName(c.district_code)],
    ["companies.address", text(c.address)],
    ["companies.contact_name", text(c.contact_name)],
    ["companies.contact_phone", text(c.contact_phone)],
    ["companies.order_phone", text(c.order_phone)],
    ["companies.licence_no", el("span", { class: "mono", text: text(c.licence_no) })],
    ["companies.licence_expiry", date(c.licence_expiry)],
    ["companies.licence_status", statusBadge(c.licence_status)],
    ["companies.licence_status_reason", text(c.licence_status_reason)],
    ["companies.notice_text", text(c.notice_text)],
    ["companies.notice_url", el("span", { class: "mono", text: text(c.notice_url) })],
    ["companies.updated_at", dateTime(c.updated_at)],
  ];
  clear(viewFields);
  for (const [label, value] of rows) {
    viewFields.appendChild(el("div", { dataset: { field: label.split(".")[1] } }, el("dt", { text: t(label) }), el("dd", {}, value)));
  }
  byId("company-view-licences").setAttribute("href", "/admin/licences?kind=company&q=" + encodeURIComponent(c.code));
  if (editFromView) editFromView.hidden = !mayEdit(c);
  view.showModal();
}
if (editFromView) editFromView.addEventListener("click", () => { view.close(); openForm(viewing); });

const page = listPage({
  endpoint: "/api/v1/companies",
  emptyTitle: "companies.empty",
  emptyHint: config.can_edit ? "companies.empty_hint_edit" : "companies.empty_hint",
  rowAttrs: (c) => ({ dataset: { code: c.code, status: c.licence_status } }),
  columns: [
    { label: "companies.code", render: (c) => el("button", { class: "link-button mono", type: "button", dataset: { action: "open" }, onclick: () => openView(c) }, c.code), sort: (c) => c.code },
    { label: "companies.name", render: (c) => el("b", { text: c.name }), sort: (c) => c.name },
    { label: "companies.district", render: (c) => districtName(c.district_code), sort: (c) => c.district_code },
    { label: "companies.contact", render: (c) => el("div", { class: "cell-stack" }, text(c.contact_name), c.contact_phone ? el("span", { class: "muted mono", text: c.contact_phone }) : null) },
    { label: "companies.order_phone", render: (c) => el("span", { class: "mono", text: text(c.order_phone) }) },
    { label: "companies.licence_no", render: (c) => el("span", { class: "mono", text: text(c.licence_no) }) },
    { label: "companies.licence_expiry", render: (c) => date(c.licence_expiry), sort: (c) => c.licence_expiry },
    { label: "companies.licence_status", render: (c) => statusBadge(c.licence_status), sort: (c) => c.licence_status },
    { label: "common.actions", render: (c) => el("div", { class: "btn-group" },
      el("button", { class: "btn btn-sm", type: "button", dataset: { action: "view" }, onclick: () => openView(c) }, t("companies.view")),
      mayEdit(c) ? el("button", { class: "btn btn-sm", type: "button", dataset: { action: "edit" }, onclick: () => openForm(c) }, t("companies.edit")) : null) },
  ],
});

// ---------------------------------------------------------------- register / edit (admin, own company)
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("company-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("company-form"));
  const errorBox = byId("company-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("company-save"));
  const noticeBox = byId("company-notice-fields");
  /** The notice is set on a registered company (PATCH), not when registering one (POST). */
  const NOTICE = ["notice_text", "notice_url"];
  // the fields this form has: a company admin's holds its contact details and the notice only
  const FIELDS = ["code", "name", "district_code", "address", "contact_name", "contact_phone", "order_phone", "licence_no", "licence_expiry", "licence_status", ...NOTICE]
    .filter((name) => form.elements.namedItem(name) !== null);
  /** @type {any} */
  let editing = null;

  /** A stored value as the form shows it ("" for none). @param {any} c @param {string} name */
  const shown = (c, name) => (c[name] === null || c[name] === undefined ? "" : String(c[name]).slice(0, name === "licence_expiry" ? 10 : undefined));

  openForm = (c) => {
    editing = c;
    form.reset();
    errorBox.hidden = true;
    if (c) {
      for (const name of FIELDS) {
        const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name));
        if (field) field.value = shown(c, name);
      }
    }
    noticeBox.hidden = !c;
    byId("company-dialog-title").textContent = c ? t("companies.edit_title", { code: c.code }) : t("companies.create");
    dialog.showModal();
  };
  const newBtn = document.getElementById("new-company");
  if (newBtn) newBtn.addEventListener("click", () => openForm(null));
  const ownBtn = /** @type {HTMLButtonElement | null} */ (document.getElementById("edit-own-company"));
  if (ownBtn && ownCompany !== null) {
    ownBtn.addEventListener("click", async () => {
      ownBtn.disabled = true;
      try {
        openForm(await api("/api/v1/companies/" + ownCompany));
      } catch (err) {
        toast(/** @type {Error} */ (err).message, "error");
      } finally {
        ownBtn.disabled = false;
      }
    });
  }
  byId("company-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const v = formValues(form);
    /** @type {Record<string, unknown>} */
    const body = {};
    for (const name of FIELDS) {
      const value = v[name] ? v[name].trim() : null;
      if (editing) {
        const before = shown(editing, name) || null;
        if (before !== value && !(name === "licence_status" && value === null)) body[name] = value;
      } else if (value !== null && !NOTICE.includes(name)) {
        body[name] = value;
      }
    }
    if (editing && !Object.keys(body).length) {
      dialog.close();
      return;
    }
    saveBtn.disabled = true;
    try {
      if (editing) await api("/api/v1/companies/" + editing.id, { method: "PATCH", body });
      else await api("/api/v1/companies", { method: "POST", body });
      dialog.close();
      toast(t(editing ? "companies.saved" : "companies.created", { name: String(v.name || (editing && editing.name) || "") }));
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });
}
