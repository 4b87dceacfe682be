// @ts-check
/* Exports and reports: the archive export (CSV/XLSX, streamed by the API) and every report
   of GET /api/v1/reports the user's role may run, as CSV/XLSX downloads, each named by a
   link to its page (/reports/{name}: chart, table, drill-down). The scope form
   (district, company, dates) applies to all links; the archive's own form (compliance)
   to the archive export only — the same filters as the cylinder search. */
import { api, qs } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { tOr } from "./lib/i18n.js";
import { exportLinks } from "./lib/table.js";
import { emptyState, errorState } from "./lib/ui.js";

const form = /** @type {HTMLFormElement} */ (byId("scope-form"));
const archiveForm = /** @type {HTMLFormElement} */ (byId("archive-form"));
const ARCHIVE = "/api/v1/cylinders/export";
const box = byId("reports");
const role = config.user && config.user.role;
const DATED = new Set(["fills-daily", "denials", "anomalies-by-company", "safety-inspections"]);
/** @type {any[]} */
let reports = [];

/** @param {boolean} withDates */
function scope(withDates) {
  const v = formValues(form);
  return withDates ? { district: v.district, company: v.company, from: v.from, to: v.to } : { district: v.district, company: v.company };
}

function render() {
  clear(box);
  const mine = reports.filter((r) => !r.roles || r.roles.includes(role));
  if (!mine.length) {
    emptyState(box, "exports.no_reports", "exports.no_reports_hint");
    return;
  }
  box.appendChild(el("ul", { class: "report-list" }, mine.map((r) => {
    const q = scope(DATED.has(r.name));
    const formats = /** @type {string[]} */ (r.formats || ["json", "csv", "xlsx"]).filter((f) => f !== "json");
    return el("li", { class: "report-item", dataset: { report: r.name } },
      el("div", {}, el("a", { href: "/reports/" + encodeURIComponent(r.name), dataset: { testid: "report-page-link" } }, el("b", { text: tOr("report." + r.name, r.summary || r.name) })),
        el("div", { class: "muted", text: tOr("report." + r.name + ".hint", r.summary || "") })),
      el("div", { class: "btn-group" }, formats.map((f) =>
        el("a", { class: "btn btn-sm", href: r.path + qs({ format: f, ...q }), download: true, text: f.toUpperCase() }))));
  })));
}

/** The archive export's links: the scope and the archive's own filters. */
function archiveLinks() {
  exportLinks(ARCHIVE, { ...scope(false), ...formValues(archiveForm) }, ["district", "company", "compliance"]);
}

function update() {
  archiveLinks();
  render();
}

api("/api/v1/reports")
  .then((res) => { reports = res.items || []; render(); })
  .catch((err) => errorState(box, err));
form.addEventListener("change", update);
archiveForm.addEventListener("change", archiveLinks);
archiveForm.addEventListener("submit", (ev) => ev.preventDefault());
archiveLinks();
