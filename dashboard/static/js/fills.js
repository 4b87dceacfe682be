// @ts-check
/* Fill log (GET /api/v1/fills): newest first, filtered by time, station, company, result. */
import { el } from "./lib/dom.js";
import { dateTime, dayInstant, number, text } from "./lib/format.js";
import { tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";

/** The badge colour of a fill assessment (overfill is the dangerous one). @param {string} a */
const assessmentTone = (a) => (a === "ok" ? "ok" : a === "overfill" ? "overdue" : "inspection_due");

listPage({
  endpoint: "/api/v1/fills",
  emptyTitle: "fills.empty",
  emptyHint: "fills.empty_hint",
  query: (v) => ({ ...v, from: dayInstant(v.from), to: dayInstant(v.to, true) }),
  columns: [
    { label: "fill.time", render: (r) => dateTime(r.ts), sort: (r) => r.ts },
    { label: "fill.station", render: (r) => (r.station_name ? r.station_name + " (" + r.station_code + ")" : text(r.gun_id)) },
    { label: "cylinder.tag", render: (r) =>
      r.cylinder_id ? el("a", { class: "mono", href: "/cylinders/" + r.cylinder_id, text: r.tag }) : el("span", { class: "mono", text: r.tag }) },
    { label: "cylinder.spec", key: "spec" },
    { label: "fill.net_kg", cls: "num", render: (r) => number(r.net_kg, 2), sort: (r) => Number(r.net_kg) },
    { label: "fill.result", render: (r) => tOr("fill.result." + r.result, r.result) },
    { label: "fill.assessment", render: (r) => (r.assessment
      ? el("span", { class: "badge badge-" + assessmentTone(r.assessment), text: tOr("fill.assessment." + r.assessment, r.assessment) })
      : "—") },
    { label: "fill.company", render: (r) => text(r.company_name) },
    { label: "fill.operator", render: (r) => text(r.operator) },
  ],
});
