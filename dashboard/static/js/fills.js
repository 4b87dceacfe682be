/* Fill log (GET /api/v1/fills): newest first, filtered by time, station, company, result. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el;
  CW.listPage({
    endpoint: "/api/v1/fills",
    emptyTitle: "fills.empty",
    emptyHint: "fills.empty_hint",
    query: function (v) {
      v.from = CW.dayInstant(v.from);
      v.to = CW.dayInstant(v.to, true);
      return v;
    },
    columns: [
      { label: "fill.time", render: function (r) { return CW.dateTime(r.ts); } },
      { label: "fill.station", render: function (r) { return r.station_name ? r.station_name + " (" + r.station_code + ")" : CW.text(r.gun_id); } },
      { label: "cylinder.tag", render: function (r) {
        return r.cylinder_id ? el("a", { class: "mono", href: "/cylinders/" + r.cylinder_id, text: r.tag }) : el("span", { class: "mono", text: r.tag });
      } },
      { label: "cylinder.spec", key: "spec" },
      { label: "fill.net_kg", cls: "num", render: function (r) { return CW.number(r.net_kg, 2); } },
      { label: "fill.result", render: function (r) { return CW.tOr("fill.result." + r.result, r.result); } },
      { label: "fill.assessment", render: function (r) {
        if (!r.assessment) return "—";
        var cls = r.assessment === "ok" ? "ok" : (r.assessment === "overfill" ? "overdue" : "inspection_due");
        return el("span", { class: "badge badge-" + cls, text: CW.tOr("fill.assessment." + r.assessment, r.assessment) });
      } },
      { label: "fill.company", render: function (r) { return CW.text(r.company_name); } },
      { label: "fill.operator", render: function (r) { return CW.text(r.operator); } }
    ]
  });
})();
