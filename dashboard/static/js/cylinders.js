// @ts-check
/* Cylinder search (GET /api/v1/cylinders) with export links that follow the filters. */
import { el } from "./lib/dom.js";
import { date, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { complianceBadge, statusLabel } from "./lib/ui.js";

listPage({
  endpoint: "/api/v1/cylinders",
  emptyTitle: "cylinders.empty",
  emptyHint: "cylinders.empty_hint",
  // what the archive export filters on (server/api/cylinders.py)
  exports: { base: "/api/v1/cylinders/export", keys: ["company", "status", "district"] },
  rowAttrs: (r) => ({ dataset: { cylinderId: String(r.id) } }),
  columns: [
    { label: "cylinder.tag", render: (r) => el("a", { class: "row-link mono", href: "/cylinders/" + r.id, text: r.tag }), sort: (r) => r.tag },
    { label: "cylinder.stamp", render: (r) => el("span", { class: "mono", text: text(r.stamp) }) },
    { label: "cylinder.barcode", render: (r) => el("span", { class: "mono", text: text(r.barcode) }) },
    { label: "cylinder.owner", render: (r) => text(r.owner_name), sort: (r) => r.owner_name },
    { label: "cylinder.spec", key: "spec" },
    { label: "cylinder.next_inspection", render: (r) => date(r.next_inspection_date), sort: (r) => r.next_inspection_date },
    { label: "cylinder.scrap_date", render: (r) => date(r.scrap_date), sort: (r) => r.scrap_date },
    { label: "cylinder.status", render: (r) => statusLabel(r.status) },
    { label: "cylinder.compliance", render: (r) => complianceBadge(r.compliance) },
    { label: "cylinder.location", render: (r) =>
      tOr("location." + r.location_kind, r.location_kind || "—") + (r.fill_state ? " · " + t("fill_state." + r.fill_state) : "") },
  ],
});
