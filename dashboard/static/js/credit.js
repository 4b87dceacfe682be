// @ts-check
/* Credit ranking (GET /api/v1/credit): companies by rank with score and grade, a bar chart of
   companies per grade for the same filters, a fuzzy search by name; regulators ask for a
   recomputation (POST /api/v1/credit/recompute). Every number is the round's snapshot. */
import { api, qs } from "./lib/api.js";
import { THEMES, axisStyle, createChart, emptyGraphic, rem } from "./lib/chart.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formFromUrl, formValues } from "./lib/dom.js";
import { date, dateTime, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { pager, table } from "./lib/table.js";
import { badge, emptyState, errorState, loading, toast } from "./lib/ui.js";

/** Palette index (lib/chart.js THEMES) of each grade's bar: green, blue, amber, red. */
const GRADE_COLOURS = /** @type {Record<string, number>} */ ({ A: 4, B: 0, C: 1, D: 2 });

/** @param {string | null} grade */
function gradeBadge(grade) {
  if (!grade) return el("span", { class: "muted", text: t("credit.unrated") });
  const node = badge("credit-" + grade, t("credit.grade." + grade));
  node.classList.add("credit-grade");
  node.dataset.testid = "grade-badge";
  return node;
}

/** How grades are given, in words (the page config's [credit] grading). @param {any} g */
function gradingRule(g) {
  return g.mode === "rank"
    ? t("credit.rule.rank", { top: g.rank_top, bottom: g.rank_bottom, b: g.thresholds.B, months: g.window_months })
    : t("credit.rule.thresholds", { a: g.thresholds.A, b: g.thresholds.B, c: g.thresholds.C, months: g.window_months, base: g.base });
}

/** @type {Record<string, string>} */
const districtNames = {};
for (const d of config.districts || []) districtNames[d.code] = config.lang === "en" && d.name_en ? d.name_en : d.name;

const form = /** @type {HTMLFormElement} */ (byId("search-form"));
const results = byId("results");
const pagerBox = byId("pager");
const chart = createChart(byId("grades-chart"));
const theme = THEMES.light;
byId("grading-rule").textContent = gradingRule(config.grading);

/** @param {Record<string, number>} grades */
function drawChart(grades) {
  const r = rem();
  const values = config.grades.map((/** @type {string} */ g) => grades[g] || 0);
  const empty = values.every((/** @type {number} */ v) => v === 0);
  chart.setOption({
    animation: false,
    grid: { left: 40, right: 16, top: 24, bottom: 28 },
    xAxis: { type: "category", data: config.grades.map((/** @type {string} */ g) => t("credit.grade." + g)), ...axisStyle(theme, r) },
    yAxis: { type: "value", minInterval: 1, ...axisStyle(theme, r) },
    tooltip: { trigger: "axis" },
    series: [{
      type: "bar",
      name: t("credit.companies"),
      data: values.map((/** @type {number} */ v, /** @type {number} */ i) => ({ value: v, itemStyle: { color: theme.palette[GRADE_COLOURS[config.grades[i]]] } })),
      label: { show: true, position: "top", color: theme.strong },
      barMaxWidth: 48,
    }],
    graphic: emptyGraphic(theme, r, empty, t("common.empty")),
  }, true);
  byId("grades-chart").dataset.drawn = String(values.reduce((a, b) => a + b, 0));
}

/** @param {any} r */
function companyCell(r) {
  return el("div", { class: "cell-stack" },
    el("a", { href: "/credit/" + r.company_id, dataset: { testid: "company-link" }, text: r.name }),
    el("span", { class: "muted mono", text: r.code }));
}

const columns = [
  { label: "credit.rank", render: (/** @type {any} */ r) => (r.rank ? el("b", { text: t("credit.rank_of", { rank: r.rank, of: r.ranked_of }) }) : el("span", { class: "muted", text: t("credit.unrated") })) },
  { label: "credit.company", render: companyCell },
  { label: "filter.district", render: (/** @type {any} */ r) => (r.district_code ? districtNames[r.district_code] || r.district_code : "—") },
  { label: "credit.score", cls: "num", render: (/** @type {any} */ r) => (r.score === null ? "—" : el("span", { class: "credit-num", dataset: { testid: "row-score" }, text: number(r.score, 2) })) },
  { label: "credit.grade", render: (/** @type {any} */ r) => gradeBadge(r.grade) },
  { label: "credit.as_of", render: (/** @type {any} */ r) => date(r.as_of) },
];

let current = 1;

/** @param {number} page */
async function load(page) {
  current = page || 1;
  const values = formValues(form);
  history.replaceState(null, "", location.pathname + qs(current > 1 ? { page: current, ...values } : values));
  loading(results);
  clear(pagerBox);
  try {
    const env = await api("/api/v1/credit", { query: { ...values, page: current, page_size: config.page_size } });
    drawChart(env.grades || {});
    byId("credit-sub").textContent = env.computed
      ? t("credit.computed", { as_of: date(env.computed.as_of), at: dateTime(env.computed.finished_at) })
      : t("credit.never_computed");
    const items = env.items || [];
    if (!items.length) {
      emptyState(results, "credit.empty", Object.keys(values).length ? "common.empty_hint" : "credit.empty_hint");
    } else {
      clear(results).appendChild(table(columns, items, (r) => ({ dataset: { company: r.company_id, grade: r.grade || "" } })));
    }
    if (items.length || current > 1) pager(pagerBox, env, load);
  } catch (err) {
    errorState(results, /** @type {any} */ (err));
  }
}

formFromUrl(form);
form.addEventListener("submit", (ev) => { ev.preventDefault(); load(1); });
form.addEventListener("reset", () => setTimeout(() => load(1), 0));
load(Number(new URLSearchParams(location.search).get("page")) || 1);

const recomputeBtn = /** @type {HTMLButtonElement | null} */ (document.getElementById("recompute"));
if (recomputeBtn) {
  recomputeBtn.addEventListener("click", async () => {
    recomputeBtn.disabled = true;
    try {
      const done = await api("/api/v1/credit/recompute", { method: "POST" });
      toast(t("credit.recomputed", { companies: done.companies, ms: done.duration_ms }));
      await load(current);
    } catch (err) {
      toast(/** @type {Error} */ (err).message, "error");
    } finally {
      recomputeBtn.disabled = false;
    }
  });
}
