/* Cylinder search (GET /api/v1/cylinders) with export links that follow the filters. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el;
  var EXPORT_KEYS = ["company", "status", "district"];  // what the export endpoint filters on

  function updateExports(values) {
    var q = {};
    EXPORT_KEYS.forEach(function (k) { if (values[k]) q[k] = values[k]; });
    ["csv", "xlsx"].forEach(function (fmt) {
      document.getElementById("export-" + fmt).href = "/api/v1/cylinders/export" + CW.qs(Object.assign({ format: fmt }, q));
    });
  }

  CW.listPage({
    endpoint: "/api/v1/cylinders",
    emptyTitle: "cylinders.empty",
    emptyHint: "cylinders.empty_hint",
    onQuery: updateExports,
    rowAttrs: function (r) { return { dataset: { cylinderId: String(r.id) } }; },
    columns: [
      { label: "cylinder.tag", render: function (r) { return el("a", { class: "row-link mono", href: "/cylinders/" + r.id, text: r.tag }); } },
      { label: "cylinder.stamp", render: function (r) { return el("span", { class: "mono", text: CW.text(r.stamp) }); } },
      { label: "cylinder.barcode", render: function (r) { return el("span", { class: "mono", text: CW.text(r.barcode) }); } },
      { label: "cylinder.owner", render: function (r) { return CW.text(r.owner_name); } },
      { label: "cylinder.spec", key: "spec" },
      { label: "cylinder.next_inspection", render: function (r) { return CW.date(r.next_inspection_date); } },
      { label: "cylinder.scrap_date", render: function (r) { return CW.date(r.scrap_date); } },
      { label: "cylinder.status", render: function (r) { return CW.statusLabel(r.status); } },
      { label: "cylinder.compliance", render: function (r) { return CW.complianceBadge(r.compliance); } },
      { label: "cylinder.location", render: function (r) {
        return CW.tOr("location." + r.location_kind, r.location_kind || "—") + (r.fill_state ? " · " + CW.t("fill_state." + r.fill_state) : "");
      } }
    ]
  });
})();
