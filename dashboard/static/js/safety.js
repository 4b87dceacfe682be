// @ts-check
/* Safety-inspection records (入户安检记录; GET /api/v1/safety-inspections): filters in the URL,
   rows newest first, CSV/XLSX links that follow the filters (the period's days sent as the
   instants they start and end), a row opening its record. */
import { el } from "./lib/dom.js";
import { date, dateTime, dayInstant, number } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { exportLinks, listPage } from "./lib/table.js";
import { badge } from "./lib/ui.js";

const ENDPOINT = "/api/v1/safety-inspections";
const FILTERS = ["company", "customer", "district", "inspector", "result", "from", "to"];

/** @param {string} result */
export function resultBadge(result) {
  return badge(result === "pass" ? "ok" : "overdue", t("safety.result." + result));
}

/** @param {Record<string, any>} values */
function query(values) {
  const out = { ...values, from: dayInstant(values.from), to: dayInstant(values.to, true) };
  exportLinks(ENDPOINT, out, FILTERS);
  return out;
}

listPage({
  endpoint: ENDPOINT,
  query,
  emptyTitle: "safety.empty",
  emptyHint: "safety.empty_hint",
  rowAttrs: (r) => ({ dataset: { testid: "record-row", id: String(r.id) } }),
  columns: [
    { label: "safety.col.id", render: (r) => el("a", { href: "/safety-inspections/" + r.id, dataset: { testid: "record-link" } }, "#" + r.id), sort: (r) => r.id },
    { label: "safety.col.inspected_at", render: (r) => dateTime(r.inspected_at), sort: (r) => r.inspected_at },
    { label: "safety.col.customer", render: (r) => el("span", {}, r.customer_name || "—", el("br"), el("small", { class: "muted", text: r.customer_account_no || "" })), sort: (r) => r.customer_account_no },
    { label: "safety.col.kind", render: (r) => tOr("safety.kind." + r.customer_kind, r.customer_kind) + " · v" + r.catalogue_version },
    { label: "safety.col.company", key: "company_name", sort: (r) => r.company_name },
    { label: "safety.col.district", key: "district_code" },
    { label: "safety.col.inspector", render: (r) => (r.inspector_name || "—") + " · " + tOr("role." + r.inspector_role, r.inspector_role) },
    { label: "safety.col.result", render: (r) => resultBadge(r.result), sort: (r) => r.result },
    { label: "safety.col.failed", render: (r) => number(r.failed_count, 0), sort: (r) => r.failed_count, cls: "num" },
    { label: "safety.col.open", render: (r) => (r.open_rectifications ? badge("open", number(r.open_rectifications, 0)) : "0"), sort: (r) => r.open_rectifications, cls: "num" },
    { label: "safety.col.corrects", render: (r) => (r.corrects ? el("a", { href: "/safety-inspections/" + r.corrects }, "#" + r.corrects) : null) },
    { label: "safety.col.received", render: (r) => date(r.received_at) },
  ],
});
