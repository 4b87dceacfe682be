// @ts-check
/* The report catalogue (/reports): every report of GET /api/v1/reports the user's role may
   run, each opening its page (/reports/{name}) with its title in the page's language and
   the kind of chart it draws. A report not yet built in the report frame (no `columns`) is
   marked "download only" and keeps its CSV/XLSX links. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { lang, t, tOr } from "./lib/i18n.js";
import { emptyState, errorState } from "./lib/ui.js";

const box = byId("catalogue");
const role = config.user && config.user.role;

/** @param {any} r */
function title(r) {
  if (!r.columns) return tOr("report." + r.name, r.summary || r.name);
  return lang === "en" ? r.title_en || r.title : r.title || r.title_en;
}

/** @param {any} r */
function card(r) {
  const href = "/reports/" + encodeURIComponent(r.name);
  const framed = !!r.columns;
  const kind = framed && r.chart ? r.chart.kind : null;
  const hint = framed ? (lang === "en" ? r.title : r.title_en) : tOr("report." + r.name + ".hint", r.summary || "");
  return el("li", { class: "report-card" + (framed ? "" : " report-card-legacy"), dataset: { report: r.name, testid: "report-card" } },
    el("a", { class: "report-card-title", href, dataset: { testid: "report-link" }, text: title(r) }),
    el("p", { class: "muted", text: hint }),
    el("div", { class: "report-card-meta" },
      kind ? el("span", { class: "badge badge-info", text: tOr("reports.kind." + kind, kind) }) : null,
      framed && r.drill && (r.columns || []).some((/** @type {any} */ c) => c.drill) ? el("span", { class: "badge badge-neutral", text: t("reports.has_drill") }) : null,
      framed ? null : el("span", { class: "badge badge-neutral", dataset: { testid: "download-only" }, text: t("reports.download_only") })),
    framed ? null : el("div", { class: "btn-group" },
      ["csv", "xlsx"].map((f) => el("a", { class: "btn btn-sm", href: r.path + "?format=" + f, download: true, text: f.toUpperCase() }))));
}

api("/api/v1/reports")
  .then((res) => {
    /** @type {Map<string, any>} */
    const byName = new Map();
    for (const r of res.items || []) {
      if (r.roles && !r.roles.includes(role)) continue;
      const seen = byName.get(r.name);
      if (!seen || (!seen.columns && r.columns)) byName.set(r.name, r);
    }
    const mine = [...byName.values()];
    mine.sort((a, b) => Number(!a.columns) - Number(!b.columns));
    clear(box);
    if (!mine.length) {
      emptyState(box, "exports.no_reports", "exports.no_reports_hint");
      return;
    }
    box.appendChild(el("ul", { class: "report-catalogue" }, mine.map(card)));
  })
  .catch((err) => errorState(box, err));
