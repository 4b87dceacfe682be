// @ts-check
/* The archive import (批量建档, templates/imports.html): choose a CSV or XLSX file, check it
   (a dry run: POST /api/v1/cylinders/import?dry_run=true answers the per-row report and writes
   nothing), read the report, import for real, and download the rejected rows in the file's own
   columns plus a reason (report=rows) to correct and upload again. Every rule is the server's;
   the page only shows what it said — each refused row and warning in the reader's language,
   from its stable code and parameters (server/archive/reasons.py, the strings
   imports.reason.<code>), the server's English sentence where the page has no string for a
   code. A file the server refuses whole (too big, a zip bomb, not a spreadsheet) comes back
   as the one error shape and is shown as a message. */
import { ApiError, csrfToken } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { number } from "./lib/format.js";
import { has, t, tOr } from "./lib/i18n.js";
import { table } from "./lib/table.js";
import { toast } from "./lib/ui.js";

const settings = config.imports || {};
const endpoint = String(settings.endpoint || "/api/v1/cylinders/import");
const maxBytes = Number(settings.max_bytes || 0);

const form = /** @type {HTMLFormElement} */ (byId("imp-form"));
const fileInput = /** @type {HTMLInputElement} */ (byId("imp-file"));
const fileInfo = byId("imp-file-info");
const errorBox = byId("imp-error");
const checkBtn = /** @type {HTMLButtonElement} */ (byId("imp-check"));
const realBtn = /** @type {HTMLButtonElement} */ (byId("imp-real"));
const realHint = byId("imp-real-hint");
const downloadBtn = /** @type {HTMLButtonElement} */ (byId("imp-download"));
const reportBox = byId("imp-report");
const reportCard = byId("imp-report-card");
const reportTitle = byId("imp-report-title");
const emptyReport = Array.from(reportBox.childNodes, (n) => n.cloneNode(true));
const untitled = reportTitle.textContent || "";

/** The report as before any check: its empty state. */
function resetReport() {
  reportTitle.textContent = untitled;
  clear(reportBox).append(...emptyReport.map((n) => n.cloneNode(true)));
}

/** @type {{file: File | null, checked: boolean, imported: boolean, busy: boolean, rejected: number}} */
const state = { file: null, checked: false, imported: false, busy: false, rejected: 0 };

/** "1.2 MB" of a size in bytes. @param {number} bytes */
function size(bytes) {
  if (bytes < 1024) return t("imports.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("imports.kb", { n: number(bytes / 1024, 1) });
  return t("imports.mb", { n: number(bytes / (1024 * 1024), 1) });
}

function sync() {
  const file = state.file;
  const tooBig = file !== null && maxBytes > 0 && file.size > maxBytes;
  checkBtn.disabled = state.busy || file === null || tooBig;
  realBtn.disabled = state.busy || !state.checked || state.imported || tooBig;
  realHint.hidden = state.checked && !state.imported;
  downloadBtn.hidden = state.rejected === 0;
  downloadBtn.disabled = state.busy;
  reportCard.setAttribute("aria-busy", String(state.busy));
}

/** @param {string} message */
function showError(message) {
  errorBox.hidden = false;
  errorBox.textContent = message;
  toast(message, "error");
}

function hideError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

/** A readable message for an error of the API (the one error shape). @param {unknown} err */
function errorMessage(err) {
  if (err instanceof ApiError) {
    const message = err.message;
    if (err.code === "payload_too_large") return t("imports.error.too_large", { mb: settings.max_upload_mb, message });
    if (err.code === "invalid_file" || err.code === "unsupported_media_type") return t("imports.error.invalid_file", { message });
    if (err.status === 0) return t("imports.error.network", { message });
    return t("imports.error.other", { message });
  }
  return t("imports.error.other", { message: String(err) });
}

/** Parameters that name a status or a role: said in the reader's words. */
const STATUS_PARAMS = new Set(["status", "old_status"]);

/**
 * One parameter of a reason as the reader reads it: a list joined, an empty text named, a
 * role or status in words — and an allowed status with the code the file must spell.
 * @param {string} name
 * @param {unknown} value
 * @returns {string}
 */
function param(name, value) {
  if (Array.isArray(value)) return value.map((v) => param(name, v)).join(t("imports.reason.list_sep"));
  const text = value === null || value === undefined ? "" : String(value);
  if (text === "") return t("imports.reason.empty");
  if (name === "role") return tOr("role." + text, text);
  if (STATUS_PARAMS.has(name)) return tOr("status." + text, text);
  if (name === "allowed" && has("status." + text)) return t("imports.reason.coded", { label: t("status." + text), code: text });
  return text;
}

/**
 * A refusal or warning in the page's language: its code's string with the parameters filled
 * in, or the server's own sentence for a code this page does not know.
 * @param {{code?: string, params?: Record<string, unknown>}} entry
 * @param {string} fallback
 */
function said(entry, fallback) {
  const key = "imports.reason." + (entry.code || "");
  if (!entry.code || !has(key)) return fallback;
  /** @type {Record<string, string>} */
  const vars = {};
  for (const [name, value] of Object.entries(entry.params || {})) vars[name] = param(name, value);
  return t(key, vars);
}

/**
 * POST the chosen file (multipart, field "file") with *query*; the JSON report, or the raw
 * response for report=rows. Errors arrive in the one error shape and become an ApiError.
 * @param {Record<string, string>} query
 * @returns {Promise<Response>}
 */
async function upload(query) {
  const file = /** @type {File} */ (state.file);
  const body = new FormData();
  body.append("file", file, file.name);
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  let res;
  try {
    res = await fetch(endpoint + "?" + new URLSearchParams(query).toString(), {
      method: "POST",
      body,
      headers,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network_error", err instanceof Error ? err.message : String(err));
  }
  if (res.status === 401) {
    window.location.href = "/login?next=" + encodeURIComponent(location.pathname);
  }
  if (!res.ok) {
    const data = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json() : {};
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText, e.details);
  }
  return res;
}

/**
 * The report on screen: the counts, the warnings, the rejected rows (line, column, value, reason).
 * @param {any} report the JSON report of the import endpoint
 */
function showReport(report) {
  const dry = Boolean(report.dry_run);
  reportTitle.textContent = t(dry ? "imports.report.dry" : "imports.report.done", { file: report.filename || "" });
  const counts = el("div", { class: "imp-counts", dataset: { testid: "report-counts" } },
    ["total_rows", "inserted", "updated", "unchanged", "rejected"].map((key) =>
      el("div", { class: "kpi" + (key === "rejected" && report.rejected ? " kpi-alert" : ""), dataset: { count: key, testid: "count-" + key } },
        el("span", { class: "kpi-value", text: number(report[key], 0) }),
        el("span", { class: "kpi-label", text: t("imports.count." + key + (dry ? ".dry" : "")) }))));
  const lead = el("div", {
    class: "alert-box " + (report.rejected ? "alert-warn" : "alert-ok"),
    role: "status",
    dataset: { testid: "report-lead" },
    text: t(report.rejected ? (dry ? "imports.lead.dry_rejected" : "imports.lead.done_rejected") : (dry ? "imports.lead.dry_ok" : "imports.lead.done_ok"), {
      stored: report.inserted + report.updated,
      rejected: report.rejected,
    }),
  });
  /** @type {{code?: string, params?: Record<string, unknown>, text: string}[]} */
  const notes = report.warning_details || (report.warnings || []).map((/** @type {string} */ w) => ({ text: w }));
  const warnings = notes.length
    ? el("ul", { class: "imp-warnings muted", dataset: { testid: "report-warnings" } },
      notes.map((w) => el("li", { title: w.text, dataset: { code: w.code || "" }, text: said(w, w.text) })))
    : null;
  const rows = report.rejected_rows || [];
  const listed = rows.length
    ? table([
      { label: "imports.col.line", render: (r) => String(r.line), sort: (r) => r.line, cls: "num" },
      { label: "imports.col.column", render: (r) => el("span", { class: "mono", text: r.column || "—" }), sort: (r) => r.column },
      { label: "imports.col.value", render: (r) => el("span", { class: "mono imp-value", text: r.value === "" ? "—" : r.value }) },
      { label: "imports.col.reason", render: (r) => el("span", { title: r.reason, text: said(r, r.reason) }) },
    ], rows, (r) => ({ dataset: { line: String(r.line), column: r.column, code: r.code || "" } }))
    : null;
  const truncated = report.rejected_truncated
    ? el("p", { class: "muted imp-note", text: t("imports.truncated", { listed: rows.length, total: report.rejected }) })
    : null;
  clear(reportBox).append(...[lead, counts, warnings, listed, truncated].filter((n) => n !== null));
}

/** @param {string} key a string key while busy */
function busy(key) {
  state.busy = true;
  sync();
  clear(reportBox).appendChild(el("div", { class: "loading", dataset: { testid: "import-busy" }, text: t(key) }));
}

/** @param {boolean} dryRun */
async function send(dryRun) {
  if (!state.file) return;
  hideError();
  busy(dryRun ? "imports.checking" : "imports.importing");
  try {
    const res = await upload(dryRun ? { dry_run: "true" } : {});
    const report = await res.json();
    state.checked = true;
    state.imported = !dryRun;
    state.rejected = Number(report.rejected || 0);
    showReport(report);
    if (!dryRun) toast(t("imports.done", { inserted: report.inserted, updated: report.updated, rejected: report.rejected }));
  } catch (err) {
    state.checked = false;
    state.rejected = 0;
    resetReport();
    showError(errorMessage(err));
  } finally {
    state.busy = false;
    sync();
  }
}

/** The rejected rows as the file had them, plus why: a CSV to correct (report=rows). */
async function downloadRejected() {
  if (!state.file) return;
  const name = state.file.name.replace(/\.[^.]*$/, "") || "archive";
  downloadBtn.disabled = true;
  try {
    const res = await upload({ dry_run: "true", report: "rows" });
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: t("imports.rejected_file", { name }), hidden: true });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    downloadBtn.disabled = state.busy;
  }
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files && fileInput.files.length ? fileInput.files[0] : null;
  state.file = file;
  state.checked = false;
  state.imported = false;
  state.rejected = 0;
  hideError();
  resetReport();
  if (file) {
    fileInfo.hidden = false;
    fileInfo.textContent = t("imports.chosen", { name: file.name, size: size(file.size) });
    if (maxBytes > 0 && file.size > maxBytes) {
      showError(t("imports.error.too_large", { mb: settings.max_upload_mb, message: t("imports.error.size", { size: size(file.size) }) }));
    }
  } else {
    fileInfo.hidden = true;
  }
  sync();
});
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  send(true);
});
realBtn.addEventListener("click", () => send(false));
downloadBtn.addEventListener("click", downloadRejected);
sync();
document.body.dataset.ready = "1";
