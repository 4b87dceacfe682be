// @ts-check
/* Cylinder search (GET /api/v1/cylinders) with export links that follow the filters, and the
   QR label sheet of the current search (GET /api/v1/cylinders/labels.pdf, A4 PDF). */
import { qs } from "./lib/api.js";
import { byId, el, formValues } from "./lib/dom.js";
import { date, text } from "./lib/format.js";
import { lang, t, tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { complianceBadge, statusLabel, toast } from "./lib/ui.js";

listPage({
  endpoint: "/api/v1/cylinders",
  emptyTitle: "cylinders.empty",
  emptyHint: "cylinders.empty_hint",
  // the archive export takes every filter of the search (server/api/archive.py EXPORT_QUERY)
  exports: { base: "/api/v1/cylinders/export", keys: ["tag", "stamp", "barcode", "q", "company", "status", "district", "compliance"] },
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

// ---------------------------------------------------------------- QR labels of the search
const printButton = /** @type {HTMLButtonElement | null} */ (document.getElementById("print-labels"));
if (printButton) {
  printButton.addEventListener("click", async () => {
    const filters = formValues(/** @type {HTMLFormElement} */ (byId("search-form")));
    printButton.disabled = true;
    toast(t("public_qr.labels_making"));
    try {
      const res = await fetch("/api/v1/cylinders/labels.pdf" + qs({ ...filters, lang }), { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) {
        const data = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json() : {};
        const err = (data && data.error) || {};
        const max = err.details && err.details.max;
        toast(max ? t("public_qr.labels_too_many", { max }) : t("error.load_failed") + " " + (err.message || res.statusText), "error");
        return;
      }
      const url = URL.createObjectURL(await res.blob());
      const link = el("a", { href: url, download: "labels.pdf", hidden: true });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      toast(t("public_qr.labels_done", { n: res.headers.get("X-Labels") || "?" }));
      const skipped = Number(res.headers.get("X-Labels-Skipped") || 0);
      if (skipped) toast(t("public_qr.labels_skipped", { n: skipped }));
    } catch (err) {
      toast(t("error.load_failed") + " " + (err instanceof Error ? err.message : String(err)), "error");
    } finally {
      printButton.disabled = false;
    }
  });
}
