// @ts-check
/* Periodic inspection and scrapping (定期检验与报废) for an inspection agency.
   A handheld scanner types a code and Enter into the scan box, which keeps the focus: the
   cylinder is looked up (GET /api/v1/cylinders?tag= | barcode= | stamp=) and shown; in
   "confirm" mode a pass shows its new next-inspection date first (POST …/inspections?
   dry_run=true: the domain's rule, not a copy here) and one key or click records the result
   (F2 pass, F4 fail → scrapped, F9 scrap); the batch modes apply one result to every scan.
   Records are never edited or undone: the session's list is what was written. Below, the
   day's work (GET /api/v1/inspections: rows, counts per result, CSV). */
import { api, qs } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { pager, table } from "./lib/table.js";
import { complianceBadge, emptyState, errorState, loading, statusLabel, toast } from "./lib/ui.js";

const KEYS = { F2: "pass", F4: "fail", F9: "scrap" };
/** @type {Record<string, string>} */
const RESULT_CLASS = { pass: "badge-ok", fail: "badge-overdue", scrap: "badge-scrapped", error: "badge-critical" };

/** @param {string} result */
const resultLabel = (result) => tOr("inspection.result." + result, result);
/** @param {string | null | undefined} reason */
const reasonLabel = (reason) => (reason ? tOr("scrap_reason." + reason, reason) : "—");
/** @param {string} result */
const resultBadge = (result) => el("span", { class: "badge " + (RESULT_CLASS[result] || "badge-neutral"), dataset: { result } }, resultLabel(result));

// ---------------------------------------------------------------- the day's work

const dayForm = /** @type {HTMLFormElement} */ (byId("day-form"));
const dayResults = byId("day-results");
const dayPager = byId("day-pager");
let dayPage = 1;
let daySeq = 0; // answers of an earlier request that arrive late are dropped

/** @param {any} r */
const tagCell = (r) => el("a", { class: "mono row-link", href: "/cylinders/" + r.cylinder_id, text: r.tag });

const DAY_COLUMNS = [
  { label: "inspections.col.recorded", render: (/** @type {any} */ r) => dateTime(r.created_at), sort: (/** @type {any} */ r) => r.created_at },
  { label: "inspections.col.tag", render: tagCell, sort: (/** @type {any} */ r) => r.tag },
  { label: "inspections.col.owner", render: (/** @type {any} */ r) => text(r.owner_name) },
  { label: "inspections.col.spec", render: (/** @type {any} */ r) => text(r.spec) },
  { label: "inspections.col.inspected_on", render: (/** @type {any} */ r) => date(r.inspected_on) },
  { label: "inspections.col.result", render: (/** @type {any} */ r) => resultBadge(r.result), sort: (/** @type {any} */ r) => r.result },
  { label: "inspections.col.outcome", render: (/** @type {any} */ r) => (r.result === "pass" ? t("inspections.next_on", { date: date(r.next_inspection_date) }) : reasonLabel(r.scrap_reason)) },
  { label: "inspections.report_no", render: (/** @type {any} */ r) => text(r.report_no) },
  ...(config.show_agency ? [{ label: "inspections.agency", render: (/** @type {any} */ r) => text(r.agency_name) }] : []),
  { label: "inspections.col.by", render: (/** @type {any} */ r) => text(r.recorded_by) },
];

/** @param {Record<string, number> | null} counts per result (null: unknown) */
function showCounts(counts) {
  const total = counts ? Object.values(counts).reduce((a, b) => a + b, 0) : 0;
  byId("day-counts").querySelectorAll(".kpi").forEach((node) => {
    const key = String(/** @type {HTMLElement} */ (node).dataset.result);
    const value = /** @type {HTMLElement} */ (node.querySelector(".kpi-value"));
    value.textContent = counts === null ? "—" : String(key === "total" ? total : counts[key] || 0);
  });
}

/** @param {number} [page] */
async function loadDay(page) {
  dayPage = page || 1;
  const seq = ++daySeq;
  const values = formValues(dayForm);
  const link = /** @type {HTMLAnchorElement | null} */ (document.querySelector("a[data-export]"));
  if (link) link.href = "/api/v1/inspections" + qs({ format: "csv", ...values });
  loading(dayResults);
  clear(dayPager);
  try {
    const env = await api("/api/v1/inspections", { query: { ...values, page: dayPage, page_size: config.page_size } });
    if (seq !== daySeq) return;
    const items = env.items || [];
    showCounts(env.counts || null);
    if (!items.length) emptyState(dayResults, "inspections.day.empty", values.date ? "inspections.day.empty_hint" : "common.empty_hint", "✓");
    else clear(dayResults).appendChild(table(DAY_COLUMNS, items, (r) => ({ dataset: { tag: r.tag, result: r.result } })));
    if (items.length || dayPage > 1) pager(dayPager, env, loadDay);
  } catch (err) {
    if (seq !== daySeq) return;
    showCounts(null);
    errorState(dayResults, /** @type {Error} */ (err));
  }
}

dayForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadDay(1);
});
// the totals at once when a filter changes (the date above all)
dayForm.addEventListener("change", () => loadDay(1));
loadDay(1);

// ---------------------------------------------------------------- scanning and recording

if (config.can_act) {
  const scanForm = /** @type {HTMLFormElement} */ (byId("scan-form"));
  const scanInput = /** @type {HTMLInputElement} */ (byId("scan-input"));
  const settings = /** @type {HTMLFormElement} */ (byId("settings-form"));
  const card = byId("cyl-card");
  const list = byId("session-list");
  /** @type {any} */
  let pending = null; // the cylinder shown in confirm mode, not yet recorded
  let busy = false;
  let recorded = 0;
  /** @type {Promise<unknown>} */
  let queue = Promise.resolve();

  const focusScan = () => scanInput.focus();
  const mode = () => {
    const checked = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name="mode"]:checked'));
    return checked ? checked.value : "confirm";
  };

  /** The session's settings as the API wants them. */
  function session() {
    const v = formValues(settings);
    return {
      day: v.inspected_on || config.today,
      report_no: v.report_no || undefined,
      reason: v.scrap_reason,
      note: v.note || undefined,
      agency: v.agency_site_id ? Number(v.agency_site_id) : undefined,
    };
  }

  /**
   * A line of the session's list (newest on top); never changed afterwards.
   * @param {string} result pass | fail | scrap | error
   * @param {string} code what was scanned (or the tag)
   * @param {string} detail
   * @param {number | null} [cid]
   */
  function logLine(result, code, detail, cid) {
    const now = new Date();
    const hh = now.toTimeString().slice(0, 8);
    list.prepend(el("li", { class: "insp-line", dataset: { testid: "session-entry", result, code } },
      el("span", { class: "muted mono", text: hh }),
      cid ? el("a", { class: "mono", href: "/cylinders/" + cid, text: code }) : el("span", { class: "mono", text: code }),
      result === "error" ? el("span", { class: "badge badge-critical", text: t("inspections.session.error") }) : resultBadge(result),
      el("span", { class: "insp-detail", text: detail })));
    if (result !== "error") recorded += 1;
    byId("session-empty").hidden = true;
    byId("session-count").textContent = t("inspections.session.count", { n: recorded });
  }

  /** @param {string} label @param {Node | string | null | undefined} value */
  const field = (label, value) => el("div", {}, el("dt", { text: t(label) }), el("dd", {}, value === undefined || value === null || value === "" ? "—" : value));

  /**
   * The cylinder's card; *preview* is the pass's dry run, *done* what was just recorded.
   * @param {any} c
   * @param {{preview?: any, done?: string, error?: string}} [extra]
   */
  function showCard(c, extra = {}) {
    const scrapped = c.status === "scrapped";
    const actions = el("div", { class: "btn-group insp-actions" });
    /** @type {[string, string, string][]} */
    const buttons = [["pass", "btn-primary", "F2"], ["fail", "btn-danger", "F4"], ["scrap", "btn-danger", "F9"]];
    for (const [result, cls, key] of buttons) {
      actions.appendChild(el("button", {
        type: "button",
        class: "btn " + cls,
        disabled: scrapped || !!extra.done || busy || pending !== c,
        dataset: { testid: "act-" + result },
        onclick: () => act(result),
      }, t("inspections.act." + result), el("kbd", { text: key })));
    }
    clear(card).appendChild(el("div", { dataset: { testid: "card-" + c.tag, status: c.status } },
      el("div", { class: "detail-head" },
        el("h3", { class: "mono insp-tag", text: c.tag }),
        complianceBadge(c.compliance),
        el("span", { class: "badge badge-neutral", text: statusLabel(c.status) })),
      el("dl", { class: "dl-grid insp-dl" },
        field("inspections.col.owner", c.owner_name),
        field("inspections.col.spec", c.spec),
        field("cylinder.stamp", c.stamp),
        field("cylinder.barcode", c.barcode),
        field("cylinder.manufacture_date", date(c.manufacture_date)),
        field("cylinder.last_inspection", date(c.last_inspection_date)),
        field("cylinder.next_inspection", date(c.next_inspection_date)),
        field("cylinder.scrap_date", date(c.scrap_date)),
        field("cylinder.inspection_count", String(c.inspection_count ?? "—"))),
      scrapped && !extra.done ? el("p", { class: "alert-box alert-error", dataset: { testid: "card-scrapped" }, text: t("inspections.card.scrapped") }) : null,
      extra.preview ? el("p", { class: "alert-box alert-info", dataset: { testid: "preview-next" } },
        t("inspections.card.preview", { date: date(extra.preview.next_inspection_date) }),
        extra.preview.scrap_date_capped ? " " + t("inspections.card.capped") : "") : null,
      extra.done ? el("p", { class: "alert-box alert-ok", dataset: { testid: "card-done" }, text: extra.done }) : null,
      extra.error ? el("p", { class: "alert-box alert-error", role: "alert", text: extra.error }) : null,
      actions));
  }

  /** @param {string} message */
  function cardMessage(message) {
    clear(card).appendChild(el("p", { class: "alert-box alert-error", role: "alert", dataset: { testid: "card-error" }, text: message }));
  }

  /**
   * An API refusal in the page's words where the platform's code says it all.
   * @param {{code?: string, message?: string}} err
   */
  function errorText(err) {
    if (err.code === "invalid_transition") return t("inspections.error.already_scrapped");
    return err.message || String(err);
  }

  /**
   * The cylinder a scanned code names: its tag, else its QR/barcode, else its steel stamp.
   * @param {string} code
   */
  async function lookup(code) {
    for (const key of ["tag", "barcode", "stamp"]) {
      const env = await api("/api/v1/cylinders", { query: { [key]: code, page_size: 2 } });
      const items = env.items || [];
      if (items.length > 1) throw new Error(t("inspections.scan.ambiguous", { code }));
      if (items.length === 1) return items[0];
    }
    return null;
  }

  /**
   * Record *result* for cylinder *c*; answers the updated cylinder (or throws).
   * @param {any} c
   * @param {string} result pass | fail | scrap
   */
  async function record(c, result) {
    const s = session();
    if (result === "scrap") {
      const out = await api("/api/v1/cylinders/" + c.id + "/scrap", {
        method: "POST",
        body: { reason: s.reason, note: s.note, scrapped_on: s.day, report_no: s.report_no, agency_site_id: s.agency },
      });
      logLine("scrap", c.tag, t("inspections.line.scrapped", { reason: reasonLabel(out.inspection.scrap_reason) }), c.id);
      return out.cylinder;
    }
    const body = { inspected_on: s.day, result, report_no: s.report_no, notes: s.note, agency_site_id: s.agency,
      scrap_reason: result === "fail" ? s.reason : undefined };
    const out = await api("/api/v1/cylinders/" + c.id + "/inspections", { method: "POST", body });
    const rec = out.inspection;
    const detail = result === "pass"
      ? t("inspections.next_on", { date: date(rec.next_inspection_date) })
      : t("inspections.line.scrapped", { reason: reasonLabel(rec.scrap_reason) });
    logLine(result, c.tag, detail, c.id);
    return out.cylinder;
  }

  /**
   * Record *result* for *c* and show the card afterwards (errors on the card and in the list).
   * @param {any} c
   * @param {string} result
   */
  async function apply(c, result) {
    busy = true;
    showCard(c); // the buttons are disabled while the record is sent
    /** @type {{done?: string, error?: string}} */
    let shown;
    let after = c;
    try {
      after = await record(c, result);
      if (pending === c) pending = null;
      shown = { done: result === "pass"
        ? t("inspections.card.done_pass", { date: date(after.next_inspection_date) })
        : t("inspections.card.done_scrap") };
    } catch (err) {
      const msg = errorText(/** @type {any} */ (err));
      logLine("error", c.tag, msg, c.id);
      shown = { error: msg };
    }
    busy = false;
    showCard(after, shown);
    if (shown.done) loadDay(dayPage);
    focusScan();
  }

  /** @param {string} result the confirm-mode action on the pending cylinder */
  async function act(result) {
    if (!pending || busy) return;
    await apply(pending, result);
  }

  /** @param {string} code */
  async function handleScan(code) {
    let c;
    try {
      c = await lookup(code);
    } catch (err) {
      const msg = /** @type {Error} */ (err).message;
      logLine("error", code, msg);
      cardMessage(msg);
      return;
    }
    if (!c) {
      pending = null;
      const msg = t("inspections.scan.unknown", { code });
      logLine("error", code, msg);
      cardMessage(msg);
      toast(msg, "error");
      return;
    }
    const m = mode();
    if (m === "confirm") {
      pending = c;
      showCard(c);
      if (c.status === "scrapped") return;
      try {
        const preview = await api("/api/v1/cylinders/" + c.id + "/inspections", {
          method: "POST",
          query: { dry_run: "true" },
          body: { inspected_on: session().day, result: "pass", agency_site_id: session().agency },
        });
        if (pending === c) showCard(c, { preview });
      } catch (err) {
        if (pending === c) showCard(c, { error: /** @type {Error} */ (err).message });
      }
      return;
    }
    pending = null;
    if (c.status === "scrapped") { // nothing to record twice: said here, no request made
      const msg = t("inspections.error.already_scrapped");
      logLine("error", c.tag, msg, c.id);
      showCard(c);
      return;
    }
    await apply(c, m);
  }

  scanForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = scanInput.value.trim();
    scanInput.value = "";
    focusScan();
    if (!code) return;
    // a scanner may send the next code before this one is answered: one at a time, in order
    queue = queue.then(() => handleScan(code)).catch(() => undefined);
  });

  document.addEventListener("keydown", (ev) => {
    const result = /** @type {Record<string, string>} */ (KEYS)[ev.key];
    if (!result || !pending) return;
    ev.preventDefault();
    act(result);
  });

  // the scan box keeps the focus unless a person works another field of the page
  document.addEventListener("click", (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    if (!target.closest("input, select, textarea, a, label")) focusScan();
  });
  document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", () => {
    pending = null;
    clear(card).appendChild(el("p", { class: "muted insp-card-empty", text: t("inspections.mode.hint." + mode()) }));
    focusScan();
  }));
  focusScan();
}
