// @ts-check
/* The officer's daily inspection list (GET /api/v1/risk/sites): the stations and stores of the
   caller's districts ranked by risk, each with the reasons behind its rank (a sentence per
   factor, in the page's language, and the counts), a link to the site on the live map, CSV /
   XLSX of the same list, and a print layout (inspection_list.css) with a column to tick each
   visit by hand. The rule and every number are the server's ([risk], server.domain.site_risk). */
import { api, qs } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formFromUrl, formValues } from "./lib/dom.js";
import { date, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { exportLinks, table } from "./lib/table.js";
import { emptyState, errorState, loading } from "./lib/ui.js";

const ENDPOINT = "/api/v1/risk/sites";
const FILTERS = ["district", "limit"];
const english = config.lang === "en";

const form = /** @type {HTMLFormElement} */ (byId("search-form"));
const results = byId("results");
const districtSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("district"));

/** @param {string} factor */
const factorName = (factor) => t("inspection_list.factor." + factor);

/** The site, its kind and company, and its place on the live map. @param {any} r */
function siteCell(r) {
  return el("div", { class: "cell-stack" },
    el("b", { dataset: { testid: "site-name" }, text: r.name }),
    el("span", { class: "muted mono", text: r.code }),
    el("span", { class: "muted small", text: [t("site.kind." + r.kind), r.company_name].filter(Boolean).join(" · ") }),
    r.address ? el("span", { class: "muted small", text: r.address }) : null,
    el("a", { class: "il-map-link", href: "/" + qs({ site: r.code }), dataset: { testid: "map-link" }, text: t("inspection_list.on_map") }));
}

/** Each reason as a sentence, heaviest first (the server's order). @param {any} r */
function reasonsCell(r) {
  return el("ul", { class: "il-reasons", dataset: { testid: "reasons" } },
    (r.reasons || []).map((/** @type {any} */ x) => el("li", { dataset: { factor: x.factor } },
      english ? x.text_en : x.text,
      el("span", { class: "muted", text: " (+" + number(x.points) + ")" }))));
}

/** Every factor's count, the ones without facts faded. @param {any} r */
function countsCell(r) {
  return el("div", { class: "il-counts" }, config.factors.map((/** @type {string} */ f) => {
    const n = (r.counts || {})[f] || 0;
    return el("span", { class: "il-count-chip" + (n ? "" : " zero"), title: factorName(f), dataset: { factor: f, count: String(n) } },
      factorName(f) + " " + number(n, 0));
  }));
}

const columns = [
  { label: "inspection_list.rank", cls: "num", sort: (/** @type {any} */ r) => r.rank, render: (/** @type {any} */ r) => el("span", { class: "il-rank", text: String(r.rank) }) },
  { label: "inspection_list.site", sort: (/** @type {any} */ r) => r.code, render: siteCell },
  { label: "filter.district", sort: (/** @type {any} */ r) => r.district_code, render: (/** @type {any} */ r) => (english ? r.district_code : r.district_name) || r.district_code },
  { label: "inspection_list.score", cls: "num", sort: (/** @type {any} */ r) => -r.score, render: (/** @type {any} */ r) => el("span", { class: "il-score", dataset: { testid: "score" }, text: number(r.score) }) },
  { label: "inspection_list.reasons", render: reasonsCell },
  { label: "inspection_list.counts", cls: "il-counts-col", render: countsCell },
  { label: "inspection_list.visited", cls: "il-visited print-only", render: () => "" },
];

/** How the score is made: each factor's weight and cap, as the server applies them. @param {any[]} factors */
function drawWeights(factors) {
  const body = clear(byId("il-weights"));
  for (const f of factors) {
    body.appendChild(el("tr", { dataset: { factor: f.factor } },
      el("td", { text: factorName(f.factor) }),
      el("td", { class: "num", text: number(f.weight) }),
      el("td", { class: "num", text: f.cap === null || f.cap === undefined ? "—" : number(f.cap, 0) })));
  }
}

/** @param {any} body @param {Record<string, string>} values */
function describe(body, values) {
  byId("il-sub").textContent = t("inspection_list.as_of", { as_of: date(body.as_of), from: date(body.from), to: date(body.to), days: body.window_days });
  byId("il-count").textContent = body.items.length
    ? t("inspection_list.shown", { shown: body.items.length, of: body.ranked_of })
    : "";
  const district = values.district && districtSelect ? districtSelect.selectedOptions[0].textContent : t("inspection_list.all_districts");
  const who = config.user ? config.user.display_name || config.user.username : "";
  byId("il-print-head").textContent = t("inspection_list.print_head", { district: district || "", as_of: date(body.as_of), who });
}

async function load() {
  const values = formValues(form);
  history.replaceState(null, "", location.pathname + qs(values));
  exportLinks(ENDPOINT, values, FILTERS);
  loading(results);
  try {
    const body = await api(ENDPOINT, { query: values });
    drawWeights(body.factors || []);
    describe(body, values);
    if (!body.items.length) {
      emptyState(results, "inspection_list.empty", "inspection_list.empty_hint", "✓");
    } else {
      clear(results).appendChild(table(columns, body.items, (r) => ({ dataset: { site: r.code, rank: String(r.rank) } })));
    }
    document.body.dataset.ready = "1";
  } catch (err) {
    errorState(results, /** @type {any} */ (err));
  }
}

formFromUrl(form);
form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
form.addEventListener("reset", () => setTimeout(load, 0));
byId("print-btn").addEventListener("click", () => window.print());
load();
