/* Dead letters (GET /api/v1/dead-letters, admin): device payloads ingest refused, and why. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el;
  CW.listPage({
    endpoint: "/api/v1/dead-letters",
    emptyTitle: "dead.empty",
    emptyHint: "dead.empty_hint",
    emptyIcon: "✓",
    query: function (v) {
      v.from = CW.dayInstant(v.from);
      v.to = CW.dayInstant(v.to, true);
      return v;
    },
    columns: [
      { label: "dead.received_at", render: function (r) { return CW.dateTime(r.received_at); } },
      { label: "dead.topic", render: function (r) { return el("span", { class: "mono", text: r.topic }); } },
      { label: "dead.reason", key: "reason" },
      { label: "dead.worker", key: "worker" },
      { label: "dead.payload", render: function (r) {
        var text = String(r.payload || "");
        return el("details", {}, el("summary", { text: CW.t("dead.bytes", { n: r.size }) }), el("pre", { class: "mono", text: text }));
      } }
    ]
  });
})();
