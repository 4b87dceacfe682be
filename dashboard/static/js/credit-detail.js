// @ts-check
/* One company's credit (GET /api/v1/companies/{id}/credit): score, grade and rank, the
   breakdown by kind with the caps applied, the monthly history as a line chart and the
   ledger, paged and filtered by kind. Regulators record good or bad conduct
   (POST .../credit/events) and the page then asks for a round (POST /api/v1/credit/recompute)
   so that the score shows it at once. */
import { api } from "./lib/api.js";
import { THEMES, axisStyle, createChart, emptyGraphic, rem } from "./lib/chart.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime, number, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { pager, table } from "./lib/table.js";
import { badge, emptyState, errorState, loading, toast } from "./lib/ui.js";

const base = "/api/v1/companies/" + config.company_id + "/credit";
const theme = THEMES.light;
const root = byId("credit-root");
const body = byId("credit-body");
const ledgerCard = byId("ledger-card");
const ledgerBox = byId("ledger");
const ledgerPager = byId("ledger-pager");
const kindFilter = /** @type {HTMLSelectElement} */ (document.querySelector("#ledger-filter select[name=kind]"));
/** @type {any} */
let historyChart = null;
let ledgerPage = 1;

/** @param {string | null} grade */
function gradeBadge(grade) {
  if (!grade) return el("span", { class: "muted", text: t("credit.unrated") });
  const node = badge("credit-" + grade, t("credit.grade." + grade));
  node.classList.add("credit-grade", "badge-lg");
  return node;
}

/** @param {string} kind */
function kindLabel(kind) {
  return tOr("credit.kind." + kind, kind);
}

/** Signed points as people read them ("+2", "−4.5"). @param {number} v */
function signed(v) {
  if (v > 0) return "+" + number(v, 2);
  if (v < 0) return "−" + number(-v, 2);
  return "0";
}

/**
 * @param {string} label
 * @param {Node | string} value
 * @param {string} [testid]
 */
function fact(label, value, testid) {
  return el("div", {}, el("dt", { text: label }), el("dd", { dataset: testid ? { testid } : {} }, value));
}

/** @param {any} d */
function drawSummary(d) {
  byId("company-name").textContent = d.company.name;
  byId("company-sub").textContent = d.company.code;
  if (!document.title.startsWith(d.company.name)) document.title = d.company.name + " · " + document.title;
  byId("score").textContent = d.score === null ? "—" : number(d.score, 2);
  clear(byId("grade")).appendChild(gradeBadge(d.grade));
  clear(byId("facts")).append(
    fact(t("credit.rank"), d.rank ? t("credit.rank_of", { rank: d.rank, of: d.ranked_of }) : "—", "rank"),
    fact(t("credit.window"), d.counted_from ? date(d.counted_from) + " – " + date(d.as_of) : "—"),
    fact(t("credit.computed_at"), dateTime(d.computed_at)),
  );
  const rows = d.breakdown || [];
  const box = byId("breakdown");
  if (!rows.length) {
    emptyState(box, "credit.never_computed", null);
    return;
  }
  clear(box).appendChild(table([
    { label: "credit.kind", render: (l) => kindLabel(l.kind) },
    { label: "credit.count", cls: "num", render: (l) => number(l.count, 0) },
    { label: "credit.raw", cls: "num", render: (l) => signed(l.raw) },
    { label: "credit.cap", cls: "num", render: (l) => (l.cap === null ? "—" : number(l.cap, 2)) },
    { label: "credit.counted", cls: "num", render: (l) => el("b", { class: l.points < 0 ? "credit-bad" : l.points > 0 ? "credit-good" : "muted" },
      signed(l.points), l.capped ? el("span", { class: "badge badge-neutral credit-capped", text: t("credit.capped") }) : null) },
  ], rows, (l) => ({ dataset: { kind: l.kind } })));
}

/** @param {any} d */
function drawHistory(d) {
  const node = byId("history-chart");
  if (!historyChart) historyChart = createChart(node);
  const r = rem();
  const points = d.history || [];
  const th = d.grading.thresholds;
  historyChart.setOption({
    animation: false,
    grid: { left: 44, right: 56, top: 24, bottom: 28 },
    tooltip: {
      trigger: "axis",
      formatter: (/** @type {any} */ ps) => {
        const p = ps[0];
        const h = points[p.dataIndex];
        return h.month.slice(0, 7) + " · " + number(h.score, 2) + " · " + t("credit.grade." + h.grade);
      },
    },
    xAxis: { type: "category", data: points.map((/** @type {any} */ h) => h.month.slice(0, 7)), ...axisStyle(theme, r) },
    // thresholds: the axis reaches down to grade C's line, so the bands a score moves across show
    yAxis: d.grading.mode === "thresholds"
      ? { type: "value", min: (/** @type {any} */ v) => Math.floor(Math.min(v.min, th.C)), max: (/** @type {any} */ v) => Math.ceil(Math.max(v.max, d.grading.base)), ...axisStyle(theme, r) }
      : { type: "value", scale: true, ...axisStyle(theme, r) },
    series: [{
      type: "line",
      name: t("credit.score"),
      data: points.map((/** @type {any} */ h) => h.score),
      symbolSize: 7,
      lineStyle: { width: 2, color: theme.palette[0] },
      itemStyle: { color: theme.palette[0] },
      markLine: d.grading.mode === "thresholds" ? {
        silent: true,
        symbol: "none",
        lineStyle: { type: "dashed", color: theme.muted },
        label: { color: theme.text, formatter: "{b}" },
        data: ["A", "B", "C"].map((g) => ({ yAxis: th[g], name: t("credit.grade." + g) })),
      } : undefined,
    }],
    graphic: emptyGraphic(theme, r, points.length === 0, t("credit.never_computed")),
  }, true);
  node.dataset.points = String(points.length);
}

/** @param {any} e */
function sourceCell(e) {
  if (e.source_type === "manual") return el("span", {}, t("credit.source.manual", { who: text(e.created_by) }));
  const site = e.site_name ? e.site_name + " (" + e.site_code + ")" : null;
  return el("div", { class: "cell-stack" },
    el("span", { text: tOr("credit.source." + e.source_type, e.source_type) + " " + e.source_id }),
    site ? el("span", { class: "muted", text: site }) : null);
}

const ledgerColumns = [
  { label: "credit.day", render: (/** @type {any} */ e) => date(e.day) },
  { label: "credit.kind", render: (/** @type {any} */ e) => kindLabel(e.kind) },
  { label: "credit.count", cls: "num", render: (/** @type {any} */ e) => number(e.count, 0) },
  { label: "credit.points", cls: "num", render: (/** @type {any} */ e) => el("b", { class: e.points < 0 ? "credit-bad" : "credit-good", text: signed(e.points) }) },
  { label: "credit.source", render: sourceCell },
  { label: "credit.note", render: (/** @type {any} */ e) => text(e.note) },
  { label: "credit.in_window", render: (/** @type {any} */ e) => (e.in_window ? t("credit.counted_yes") : el("span", { class: "muted", text: t("credit.counted_no") })) },
];

/** @param {any} env */
function drawLedger(env) {
  const items = env.items || [];
  if (!items.length) {
    emptyState(ledgerBox, "credit.ledger_empty", kindFilter.value ? "common.empty_hint" : "credit.ledger_empty_hint", "✓");
  } else {
    clear(ledgerBox).appendChild(table(ledgerColumns, items, (e) => ({ dataset: { kind: e.kind, testid: "ledger-row" } })));
  }
  clear(ledgerPager);
  if (items.length || ledgerPage > 1) pager(ledgerPager, env, (p) => load(p));
}

/** @param {number} [page] */
async function load(page) {
  ledgerPage = page || 1;
  loading(ledgerBox);
  try {
    const d = await api(base, { query: { page: ledgerPage, page_size: config.page_size, kind: kindFilter.value } });
    clear(root);
    body.hidden = false;
    ledgerCard.hidden = false;
    if (d.score === null) root.appendChild(el("div", { class: "alert-box alert-info", text: t("credit.never_computed") }));
    drawSummary(d);
    drawHistory(d);
    drawLedger(d.ledger);
    document.body.dataset.ready = "1";
  } catch (err) {
    body.hidden = true;
    ledgerCard.hidden = true;
    errorState(root, /** @type {any} */ (err));
  }
}

kindFilter.addEventListener("change", () => load(1));
load(1);

/** @param {HTMLButtonElement} btn */
async function recompute(btn) {
  btn.disabled = true;
  try {
    const done = await api("/api/v1/credit/recompute", { method: "POST" });
    toast(t("credit.recomputed", { companies: done.companies, ms: done.duration_ms }));
    await load(ledgerPage);
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  } finally {
    btn.disabled = false;
  }
}

const recomputeBtn = /** @type {HTMLButtonElement | null} */ (document.getElementById("recompute"));
if (recomputeBtn) recomputeBtn.addEventListener("click", () => recompute(recomputeBtn));

// ---------------------------------------------------------------- good / bad conduct
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("event-dialog"));
if (dialog && recomputeBtn) {
  const form = /** @type {HTMLFormElement} */ (byId("event-form"));
  const errorBox = byId("event-error");
  const save = /** @type {HTMLButtonElement} */ (byId("event-save"));
  byId("add-event").addEventListener("click", () => {
    form.reset();
    errorBox.hidden = true;
    dialog.showModal();
  });
  byId("event-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const points = Number(data.get("points"));
    const reason = String(data.get("reason") || "").trim();
    if (!(points > 0) || !reason) {
      errorBox.hidden = false;
      errorBox.textContent = t("credit.event_incomplete");
      return;
    }
    /** @type {Record<string, unknown>} */
    const payload = { kind: data.get("kind"), points, reason };
    if (data.get("day")) payload.day = data.get("day");
    save.disabled = true;
    try {
      await api(base + "/events", { method: "POST", body: payload });
      dialog.close();
      toast(t("credit.event_saved"));
      await recompute(recomputeBtn);
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      save.disabled = false;
    }
  });
}
