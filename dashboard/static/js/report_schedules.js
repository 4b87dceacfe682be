// @ts-check
/* Scheduled reports (GET/POST/PATCH/DELETE /api/v1/report-schedules): the caller's schedules
   with their last run and its file, a schedule's runs, pause/resume, run now, delete after a
   confirmation, and the dialog that makes one. A report page's "schedule this report" link
   arrives as ?report=<name>&<filters>: the dialog opens filled in with them. The filters a
   report takes come from the catalogue (GET /api/v1/reports); the period is the schedule's
   (yesterday, last week, last month), never a filter. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, dateTime, number } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";
import { table } from "./lib/table.js";
import { badge, emptyState, errorState, loading, toast } from "./lib/ui.js";

const FILTERS = ["district", "company", "station", "group"];
const GROUPS = ["day", "week", "month", "quarter", "year"];
const results = byId("results");
const admin = Boolean(config.admin);
/** @type {Map<string, any>} */
const catalogue = new Map();

/** @param {any} spec */
function title(spec) {
  if (!spec) return "";
  return lang.startsWith("en") ? spec.title_en || spec.name : spec.title || spec.name;
}

/** @param {string} state */
function stateBadge(state) {
  const kind = state === "done" ? "ok" : state === "failed" ? "overdue" : "inspection_due";
  return badge(kind, t("report_schedules.state." + state));
}

/** @param {number} runId */
function fileLink(runId) {
  return el("a", { class: "btn btn-sm", href: `/api/v1/report-runs/${runId}/file`, download: true,
    dataset: { testid: "run-file" }, text: t("report_schedules.download") });
}

/** @param {Record<string, string>} params */
function filtersText(params) {
  const parts = Object.entries(params || {}).map(([k, v]) => `${t("report_schedules.filter." + k)}: ${v}`);
  return parts.length ? parts.join(" · ") : t("report_schedules.no_filters");
}

/** @param {any} s */
function lastRun(s) {
  const r = s.last_run;
  if (!r) return el("span", { class: "muted", text: t("report_schedules.not_run") });
  return el("span", { class: "run-cell" },
    stateBadge(r.state), " ", date(r.period_first),
    r.period_last !== r.period_first ? "–" + date(r.period_last) : "",
    r.state === "done" ? [" ", fileLink(r.id)] : "",
    r.state === "failed" && r.error ? el("div", { class: "muted", text: r.error }) : "");
}

/** @param {any} s @param {Record<string, any>} change */
async function patch(s, change) {
  try {
    await api("/api/v1/report-schedules/" + s.id, { method: "PATCH", body: change });
    toast(t(change.active === false ? "report_schedules.paused" : "report_schedules.resumed"));
    load();
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  }
}

/** @param {any} s */
async function runNow(s) {
  try {
    const out = await api(`/api/v1/report-schedules/${s.id}/run`, { method: "POST", body: {} });
    const run = (out.runs || [])[0];
    toast(run ? t("report_schedules.ran", { state: t("report_schedules.state." + run.state) }) : t("report_schedules.not_run"));
    load();
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  }
}

// ---------------------------------------------------------------- runs of one schedule
const runsDialog = /** @type {HTMLDialogElement} */ (byId("runs-dialog"));
byId("runs-close").addEventListener("click", () => runsDialog.close());

/** @param {any} s */
async function showRuns(s) {
  const box = byId("runs-list");
  byId("runs-title").textContent = t("report_schedules.runs_of", { name: s.title || title(catalogue.get(s.report)) });
  loading(box);
  runsDialog.showModal();
  try {
    const env = await api(`/api/v1/report-schedules/${s.id}/runs`, { query: { page_size: 100 } });
    if (!env.items.length) {
      emptyState(box, "report_schedules.no_runs", "report_schedules.no_runs_hint", "🗓");
      return;
    }
    clear(box).appendChild(table([
      { label: "report_schedules.period", render: (r) => `${date(r.period_first)} – ${date(r.period_last)}`, sort: (r) => r.period_first },
      { label: "report_schedules.state", render: (r) => stateBadge(r.state) },
      { label: "report_schedules.rows", render: (r) => (r.row_count === null ? "—" : number(r.row_count, 0)) },
      { label: "report_schedules.finished", render: (r) => (r.finished_at ? dateTime(r.finished_at) : "—") },
      { label: "report_schedules.error", render: (r) => r.error || "" },
      { label: "report_schedules.file", render: (r) => (r.has_file ? fileLink(r.id) : "—") },
    ], env.items, (r) => ({ dataset: { runId: String(r.id), state: r.state } })));
  } catch (err) {
    errorState(box, /** @type {Error} */ (err));
  }
}

// ---------------------------------------------------------------- delete, after asking
const deleteDialog = /** @type {HTMLDialogElement} */ (byId("delete-dialog"));
/** @type {any} */
let deleting = null;
byId("delete-cancel").addEventListener("click", () => deleteDialog.close());
byId("delete-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!deleting) return;
  try {
    await api("/api/v1/report-schedules/" + deleting.id, { method: "DELETE" });
    deleteDialog.close();
    toast(t("report_schedules.deleted"));
    load();
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  }
});

/** @param {any} s */
function actions(s) {
  return el("div", { class: "btn-group" },
    el("button", { class: "btn btn-sm", type: "button", dataset: { testid: "run-now" }, onclick: () => runNow(s) }, t("report_schedules.run_now")),
    el("button", { class: "btn btn-sm", type: "button", dataset: { testid: "show-runs" }, onclick: () => showRuns(s) }, t("report_schedules.runs")),
    el("button", { class: "btn btn-sm", type: "button", dataset: { testid: s.active ? "pause" : "resume" },
      onclick: () => patch(s, { active: !s.active }) }, t(s.active ? "report_schedules.pause" : "report_schedules.resume")),
    el("button", { class: "btn btn-sm btn-danger", type: "button", dataset: { testid: "delete" }, onclick: () => {
      deleting = s;
      byId("delete-text").textContent = t("report_schedules.delete_question", { name: s.title || title(catalogue.get(s.report)) });
      deleteDialog.showModal();
    } }, t("report_schedules.delete")));
}

async function load() {
  loading(results);
  try {
    const env = await api("/api/v1/report-schedules", { query: { page_size: 200 } });
    if (!env.items.length) {
      emptyState(results, "report_schedules.empty", "report_schedules.empty_hint", "🗓");
      return;
    }
    /** @type {import("./lib/table.js").Column[]} */
    const columns = [
      { label: "report_schedules.report", render: (s) => el("div", {},
        el("a", { href: "/reports/" + encodeURIComponent(s.report), text: s.title || title(catalogue.get(s.report)) || s.report }),
        el("div", { class: "muted", text: filtersText(s.params) })), sort: (s) => s.report },
      { label: "report_schedules.frequency", render: (s) => t("report_schedules.frequency." + s.frequency), sort: (s) => s.frequency },
      { label: "report_schedules.format", render: (s) => s.format.toUpperCase() },
    ];
    if (admin) columns.push({ label: "report_schedules.owner", key: "owner", sort: (s) => s.owner });
    columns.push(
      { label: "report_schedules.state", render: (s) => (s.active ? badge("ok", t("report_schedules.active")) : badge("scrapped", t("report_schedules.paused_state"))) },
      { label: "report_schedules.last_run", render: lastRun },
      { label: "common.actions", render: actions },
    );
    clear(results).appendChild(table(columns, env.items, (s) => ({ dataset: { scheduleId: String(s.id), report: s.report, active: String(s.active) } })));
  } catch (err) {
    errorState(results, /** @type {Error} */ (err));
  }
}

// ---------------------------------------------------------------- make one
const dialog = /** @type {HTMLDialogElement} */ (byId("schedule-dialog"));
const form = /** @type {HTMLFormElement} */ (byId("schedule-form"));
const select = /** @type {HTMLSelectElement} */ (byId("schedule-report"));
const filterBox = byId("schedule-filters");
const errorBox = byId("schedule-error");

/** @param {Record<string, string>} values */
function drawFilters(values) {
  clear(filterBox);
  const spec = catalogue.get(select.value);
  if (!spec) return;
  for (const name of FILTERS) {
    if (!(spec.filters || []).includes(name)) continue;
    const value = values[name] || "";
    const input = name === "group"
      ? el("select", { name, dataset: { testid: "schedule-" + name } },
        GROUPS.map((g) => el("option", { value: g, selected: g === (value || "month"), text: t("report_schedules.group." + g) })))
      : el("input", { name, value, maxlength: name === "district" ? 6 : 64, autocomplete: "off", dataset: { testid: "schedule-" + name } });
    filterBox.appendChild(el("label", { class: "field" }, el("span", { text: t("report_schedules.filter." + name) }), input));
  }
}

/** @param {Record<string, string>} values */
function openDialog(values) {
  form.reset();
  errorBox.hidden = true;
  if (values.report && catalogue.has(values.report)) select.value = values.report;
  drawFilters(values);
  dialog.showModal();
}

select.addEventListener("change", () => drawFilters({}));
byId("new-schedule").addEventListener("click", () => openDialog({}));
byId("schedule-cancel").addEventListener("click", () => dialog.close());
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const v = formValues(form);
  /** @type {Record<string, string>} */
  const params = {};
  for (const name of FILTERS) if (v[name]) params[name] = v[name];
  try {
    await api("/api/v1/report-schedules", { method: "POST", body: {
      report: v.report, frequency: v.frequency, format: v.format, params, title: v.title || null,
    } });
    dialog.close();
    toast(t("report_schedules.created"));
    history.replaceState(null, "", location.pathname);
    load();
  } catch (err) {
    errorBox.hidden = false;
    errorBox.textContent = /** @type {Error} */ (err).message;
  }
});

async function start() {
  try {
    const cat = await api("/api/v1/reports");
    const role = config.user && config.user.role;
    for (const r of cat.items) {
      if (r.columns && (!r.roles || r.roles.includes(role))) catalogue.set(r.name, r);
    }
  } catch (err) {
    errorState(results, /** @type {Error} */ (err));
    return;
  }
  for (const spec of catalogue.values()) select.appendChild(el("option", { value: spec.name, text: title(spec) }));
  await load();
  const asked = Object.fromEntries(new URLSearchParams(location.search));
  if (asked.report) openDialog(asked);
}

start();
