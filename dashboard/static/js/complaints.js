// @ts-check
/* Complaints (投诉举报, GET/POST /api/v1/complaints): the list in the caller's scope with its
   filters, a regulator's entry of a complaint taken on the phone, and the detail dialog
   (complaints-detail.js) where a complaint is assigned, answered and closed. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { toast } from "./lib/ui.js";
import { openDetail, stateBadge, ticketText } from "./complaints-detail.js";

/** @param {any} c */
function deadlineCell(c) {
  if (c.state === "closed" || c.state === "answered") return el("span", { class: "muted", text: date(c.deadline) });
  return el("div", { class: "cell-stack" }, el("span", { text: date(c.deadline) }),
    c.overdue ? el("span", { class: "badge badge-overdue", dataset: { testid: "overdue" } }, t("complaints.overdue.true")) : null);
}

/** @param {any} c */
function assigneeCell(c) {
  if (c.assigned_company_name) return text(c.assigned_company_name);
  if (c.assigned_user_name) return text(c.assigned_user_name);
  return el("span", { class: "muted", text: t("complaints.unassigned") });
}

/** @param {any} c */
function summary(c) {
  const words = String(c.text || "");
  return el("div", { class: "cell-stack complaint-summary" },
    el("span", { text: words.length > 60 ? words.slice(0, 59) + "…" : words }),
    el("span", { class: "muted" }, t("complaints.kind." + c.kind), c.company_name ? " · " + c.company_name : ""));
}

const page = listPage({
  endpoint: "/api/v1/complaints",
  emptyTitle: "complaints.empty",
  emptyHint: "complaints.empty_hint",
  rowAttrs: (c) => ({ dataset: { id: String(c.id), ticket: c.ticket, state: c.state } }),
  columns: [
    { label: "complaints.ticket", render: (c) => el("span", { class: "mono", dataset: { testid: "ticket" }, text: ticketText(c.ticket) }), sort: (c) => c.ticket },
    { label: "complaints.filed", render: (c) => dateTime(c.created_at), sort: (c) => c.created_at },
    { label: "complaints.text", render: summary },
    { label: "complaints.state", render: (c) => stateBadge(c.state, c.outcome), sort: (c) => c.state },
    { label: "complaints.deadline", render: deadlineCell, sort: (c) => c.deadline },
    { label: "complaints.assignee", render: assigneeCell },
    {
      label: "common.actions",
      render: (c) => el("button", { class: "btn btn-sm", type: "button", dataset: { action: "open" }, onclick: () => openDetail(c.id, () => page.reload()) }, t("complaints.open")),
    },
  ],
});

// ---------------------------------------------------------------- a phone call (regulators)
const fileDialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("file-dialog"));
if (fileDialog && config.manage) {
  const form = /** @type {HTMLFormElement} */ (byId("file-form"));
  const errorBox = byId("file-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("file-save"));
  byId("new-complaint").addEventListener("click", () => {
    form.reset();
    errorBox.hidden = true;
    fileDialog.showModal();
  });
  byId("file-cancel").addEventListener("click", () => fileDialog.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const v = formValues(form);
    /** @type {Record<string, unknown>} */
    const body = { text: (v.text || "").trim(), kind: v.kind || "complaint" };
    if (v.contact && v.contact.trim()) body.contact = v.contact.trim();
    if (v.code && v.code.trim()) body.code = v.code.trim();
    if (v.company_id) body.company_id = Number(v.company_id);
    if (v.district_code) body.district_code = v.district_code;
    saveBtn.disabled = true;
    try {
      const made = await api("/api/v1/complaints", { method: "POST", body });
      fileDialog.close();
      toast(t("complaints.phone.created", { ticket: ticketText(made.ticket) }));
      await page.reload();
      openDetail(made.id, () => page.reload());
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });
}
