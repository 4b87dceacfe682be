/* Alerts centre (GET /api/v1/alerts): filter, acknowledge and resolve with a note. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el, t = CW.t;
  var lookups = { districts: {} };
  (CW.config.districts || []).forEach(function (d) { lookups.districts[d.code] = CW.config.lang === "en" && d.name_en ? d.name_en : d.name; });

  var page = CW.listPage({
    endpoint: "/api/v1/alerts",
    emptyTitle: "alerts.empty",
    emptyHint: "alerts.empty_hint",
    emptyIcon: "✓",
    query: function (v) {
      v.from = CW.dayInstant(v.from);
      v.to = CW.dayInstant(v.to, true);
      return v;
    },
    rowAttrs: function (a) { return { dataset: { alertId: String(a.id), state: a.state } }; },
    columns: [
      { label: "alert.severity", render: function (a) { return CW.severityBadge(a.severity); } },
      { label: "alert.kind", render: function (a) {
        return el("div", {}, el("b", { text: CW.alertKind(a.kind) }), a.count > 1 ? el("span", { class: "muted", text: " ×" + a.count }) : null);
      } },
      { label: "alert.subject", render: function (a) {
        var subj = String(a.subject_id || "");
        var link = a.cylinder_id ? el("a", { class: "mono", href: "/cylinders/" + a.cylinder_id, text: subj }) : el("span", { class: "mono", text: subj });
        var more = CW.alerts.details(a);
        return el("div", {}, link, more ? el("div", { class: "alert-details", text: more }) : null);
      } },
      { label: "alert.where", render: function (a) {
        return [a.site_name, a.company_name, lookups.districts[a.district]].filter(Boolean).join(" · ") || "—";
      } },
      { label: "alert.last_at", render: function (a) { return el("span", { title: t("alert.first_at") + " " + CW.dateTime(a.first_at), text: CW.dateTime(a.last_at) }); } },
      { label: "alert.state", render: function (a) {
        return el("div", {}, CW.stateBadge(a.state), a.note ? el("div", { class: "muted", text: a.note }) : null);
      } },
      { label: "alert.actions", render: function (a) {
        return CW.alerts.actions(a, function () { page.reload(); }) || "—";
      } }
    ]
  });
})();
