// @ts-check
/* Entrustments (委托充装, GET/POST /api/v1/entrustments, POST .../{id}/end): a company's
   cylinders filled at another company's stations for a period. A company admin entrusts its
   cylinders and either party ends an entrustment (with a reason); the admin does both for
   any two companies; regulators read. The gun sees a change at its next request. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { date, text } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { toast } from "./lib/ui.js";

const own = config.own_company;
const ENDABLE = new Set(["active", "pending"]);

/** @param {string} state */
function stateBadge(state) {
  return el("span", { class: "badge lic-badge ent-" + state, dataset: { value: state, testid: "entrustment-state" } }, t("entrustments.state." + state));
}

/** @param {string} name @param {string} code @param {boolean} ours */
function company(name, code, ours) {
  return el("div", { class: "cell-stack" }, el("b", { text: name }),
    el("span", { class: "muted" }, el("span", { class: "mono", text: code }), ours ? " · " + t("entrustments.ours") : ""));
}

/** Opens the end dialog (set below when the page has it). */
let openEnd = /** @type {(e: any) => void} */ (() => {});

/** @param {any} e */
function actions(e) {
  if (!config.can_edit || !ENDABLE.has(e.state)) return "—";
  return el("button", { class: "btn btn-sm", type: "button", dataset: { action: "end" }, onclick: () => openEnd(e) }, t("entrustments.end"));
}

const page = listPage({
  endpoint: "/api/v1/entrustments",
  emptyTitle: "entrustments.empty",
  emptyHint: config.can_edit ? "entrustments.empty_hint_edit" : "entrustments.empty_hint",
  query: (values) => {
    const q = { ...values };
    if (q.direction && own) q[q.direction === "given" ? "owner" : "filler"] = own;
    delete q.direction;
    return q;
  },
  rowAttrs: (e) => ({ dataset: { id: String(e.id), owner: e.owner_code, filler: e.filler_code, state: e.state } }),
  columns: [
    { label: "entrustments.owner", render: (e) => company(e.owner_name, e.owner_code, e.owner_company_id === own), sort: (e) => e.owner_name },
    { label: "entrustments.filler", render: (e) => company(e.filler_name, e.filler_code, e.filler_company_id === own), sort: (e) => e.filler_name },
    { label: "entrustments.valid_from", render: (e) => date(e.valid_from), sort: (e) => e.valid_from },
    { label: "entrustments.valid_to", render: (e) => (e.valid_to ? date(e.valid_to) : t("entrustments.open_ended")), sort: (e) => e.valid_to },
    { label: "entrustments.state", render: (e) => el("div", { class: "cell-stack" }, stateBadge(e.state),
      e.end_reason ? el("span", { class: "muted", text: e.end_reason }) : null), sort: (e) => e.state },
    { label: "entrustments.note", render: (e) => text(e.note) },
    ...(config.can_edit ? [{ label: "common.actions", render: actions }] : []),
  ],
});

// ---------------------------------------------------------------- make an entrustment
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("entrustment-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("entrustment-form"));
  const errorBox = byId("entrustment-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("entrustment-save"));
  const from = /** @type {HTMLInputElement} */ (form.elements.namedItem("valid_from"));
  const to = /** @type {HTMLInputElement} */ (form.elements.namedItem("valid_to"));
  from.addEventListener("change", () => { to.min = from.value; });

  byId("new-entrustment").addEventListener("click", () => {
    form.reset();
    errorBox.hidden = true;
    from.value = config.today;
    to.min = config.today;
    dialog.showModal();
  });
  byId("entrustment-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const v = formValues(form);
    /** @type {Record<string, unknown>} */
    const body = { filler_company_id: Number(v.filler_company_id), valid_from: v.valid_from };
    if (v.owner_company_id) body.owner_company_id = Number(v.owner_company_id);
    if (v.valid_to) body.valid_to = v.valid_to;
    if (v.note && v.note.trim()) body.note = v.note.trim();
    saveBtn.disabled = true;
    try {
      const made = await api("/api/v1/entrustments", { method: "POST", body });
      dialog.close();
      toast(t("entrustments.created", { filler: made.filler_name }));
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });

  // ---------------------------------------------------------------- end one
  const endDialog = /** @type {HTMLDialogElement} */ (byId("end-dialog"));
  const endForm = /** @type {HTMLFormElement} */ (byId("end-form"));
  const endError = byId("end-form-error");
  const endBtn = /** @type {HTMLButtonElement} */ (byId("end-save"));
  /** @type {any} */
  let ending = null;
  openEnd = (e) => {
    ending = e;
    endForm.reset();
    endError.hidden = true;
    byId("end-who").textContent = t("entrustments.end_who", { owner: e.owner_name, filler: e.filler_name });
    endDialog.showModal();
  };
  byId("end-cancel").addEventListener("click", () => endDialog.close());
  endForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!ending) return;
    const reason = formValues(endForm).reason;
    endBtn.disabled = true;
    try {
      await api("/api/v1/entrustments/" + ending.id + "/end", { method: "POST", body: reason && reason.trim() ? { reason: reason.trim() } : {} });
      endDialog.close();
      toast(t("entrustments.ended", { filler: ending.filler_name }));
      page.reload();
    } catch (err) {
      endError.hidden = false;
      endError.textContent = /** @type {Error} */ (err).message;
    } finally {
      endBtn.disabled = false;
    }
  });
}
