// @ts-check
/* Licences of companies and stations (GET /api/v1/licences): expiry, days left and the
   state today; regulators and the admin suspend, revoke or reinstate one with a reason
   (POST /api/v1/licences/{kind}/{id}/status). A station's guns are refused at their next
   request once its licence is suspended or revoked. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el } from "./lib/dom.js";
import { date, number, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { toast } from "./lib/ui.js";

/** @type {Record<string, string>} */
const districtNames = {};
for (const d of config.districts || []) districtNames[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;

/** The moves offered for each status (server.domain.licences.LICENCE_MOVES). */
const MOVES = /** @type {Record<string, [string, string][]>} */ ({
  valid: [["suspend", "suspended"], ["revoke", "revoked"]],
  suspended: [["reinstate", "valid"], ["revoke", "revoked"]],
  revoked: [],
});

/** @param {string} state */
function stateBadge(state) {
  return el("span", { class: "badge lic-badge lic-" + state, dataset: { value: state, testid: "licence-state" } }, t("licences.state." + state));
}

/** @param {any} r */
function holder(r) {
  const kind = r.kind === "company" ? t("licences.kind.company") : tOr("site.kind." + r.site_kind, t("licences.kind.site"));
  return el("div", { class: "cell-stack" }, el("b", { text: r.name }), el("span", { class: "muted" }, kind + " · ", el("span", { class: "mono", text: r.code })));
}

/** @param {any} r */
function daysLeft(r) {
  if (r.days_left === null || r.days_left === undefined) return "—";
  const cls = r.days_left < 0 ? "lic-days lic-days-past" : r.days_left <= config.expiring_days ? "lic-days lic-days-soon" : "lic-days";
  const label = r.days_left < 0 ? t("licences.days_past", { days: number(-r.days_left, 0) }) : t("licences.days_left_n", { days: number(r.days_left, 0) });
  return el("span", { class: cls, text: label });
}

/** @param {any} r */
function statusCell(r) {
  return el("div", { class: "cell-stack" }, stateBadge(r.state),
    r.licence_status !== "valid" && r.licence_status_reason ? el("span", { class: "muted", dataset: { testid: "licence-reason-shown" }, text: r.licence_status_reason }) : null);
}

/** Opens the reason dialog for a move (set below when the page has it: regulators). */
let openMove = /** @type {(r: any, move: string, status: string) => void} */ (() => {});

/** @param {any} r */
function actions(r) {
  if (!config.can_act) return "—";
  const moves = MOVES[r.licence_status] || [];
  if (!moves.length) return el("span", { class: "muted", text: t("licences.no_moves") });
  return el("div", { class: "btn-group" }, moves.map(([move, status]) =>
    el("button", { class: "btn btn-sm" + (move === "reinstate" ? " btn-primary" : ""), type: "button", dataset: { action: move }, onclick: () => openMove(r, move, status) }, t("licences.move." + move))));
}

const page = listPage({
  endpoint: "/api/v1/licences",
  emptyTitle: "licences.empty",
  emptyHint: "licences.empty_hint",
  rowAttrs: (r) => ({ dataset: { kind: r.kind, code: r.code, state: r.state, status: r.licence_status } }),
  columns: [
    { label: "licences.holder", render: holder, sort: (r) => r.code },
    { label: "licences.company", render: (r) => text(r.company_name), sort: (r) => r.company_name },
    { label: "licences.district", render: (r) => (r.district_code ? districtNames[r.district_code] || r.district_code : "—") },
    { label: "licences.licence_no", render: (r) => el("span", { class: "mono", text: text(r.licence_no) }) },
    { label: "licences.expiry", render: (r) => date(r.licence_expiry), sort: (r) => r.licence_expiry },
    { label: "licences.days_left", render: daysLeft, sort: (r) => r.days_left },
    { label: "licences.state", render: statusCell, sort: (r) => r.state },
    ...(config.can_act ? [{ label: "common.actions", render: actions }] : []),
  ],
});

// ---------------------------------------------------------------- suspend / revoke / reinstate
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("licence-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("licence-form"));
  const errorBox = byId("licence-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("licence-save"));
  const reasonBox = /** @type {HTMLTextAreaElement} */ (form.elements.namedItem("reason"));
  /** @type {{row: any, move: string, status: string} | null} */
  let acting = null;

  openMove = (row, move, status) => {
    acting = { row, move, status };
    form.reset();
    errorBox.hidden = true;
    byId("licence-dialog-title").textContent = t("licences.move." + move);
    byId("licence-who").textContent = t("licences.who", { name: row.name, code: row.code, no: row.licence_no || "—" });
    byId("licence-effect").textContent = t("licences.effect." + move + (row.kind === "site" ? ".site" : ".company"));
    saveBtn.className = "btn " + (move === "reinstate" ? "btn-primary" : "btn-danger");
    dialog.showModal();
    reasonBox.focus();
  };
  byId("licence-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!acting) return;
    const reason = reasonBox.value.trim();
    if (!reason) {
      errorBox.hidden = false;
      errorBox.textContent = t("licences.reason_required");
      reasonBox.focus();
      return;
    }
    const { row, move, status } = acting;
    saveBtn.disabled = true;
    try {
      await api("/api/v1/licences/" + row.kind + "/" + row.id + "/status", { method: "POST", body: { status, reason } });
      dialog.close();
      toast(t("licences.done." + move, { name: row.name }));
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });
}
