/* Exports and reports: the archive export (CSV/XLSX, streamed by the API) and every report
   of GET /api/v1/reports the user's role may run, as JSON/CSV/XLSX downloads. The scope
   form (district, company, dates) applies to all links. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el, t = CW.t;
  var form = document.getElementById("scope-form");
  var box = document.getElementById("reports");
  var role = CW.config.user && CW.config.user.role;
  var reports = [];
  var DATED = { "fills-daily": true, denials: true, "anomalies-by-company": true };

  function scope(withDates) {
    var v = CW.formValues(form);
    var q = { district: v.district, company: v.company };
    if (withDates) { q.from = v.from; q.to = v.to; }
    return q;
  }

  function updateArchiveLinks() {
    var q = scope(false);
    document.querySelectorAll("[data-export]").forEach(function (a) {
      a.href = "/api/v1/cylinders/export" + CW.qs(Object.assign({ format: a.dataset.export }, q));
    });
  }

  function render() {
    CW.clear(box);
    var mine = reports.filter(function (r) { return !r.roles || r.roles.indexOf(role) >= 0; });
    if (!mine.length) { CW.emptyState(box, "exports.no_reports", "exports.no_reports_hint"); return; }
    var list = el("ul", { class: "report-list" });
    mine.forEach(function (r) {
      var q = scope(!!DATED[r.name]);
      list.appendChild(el("li", { class: "report-item", dataset: { report: r.name } },
        el("div", {}, el("b", { text: CW.tOr("report." + r.name, r.summary || r.name) }),
          el("div", { class: "muted", text: CW.tOr("report." + r.name + ".hint", r.summary || "") })),
        el("div", { class: "btn-group" }, (r.formats || ["json", "csv", "xlsx"]).filter(function (f) { return f !== "json"; }).map(function (f) {
          return el("a", { class: "btn btn-sm", href: r.path + CW.qs(Object.assign({ format: f }, q)), download: true, text: f.toUpperCase() });
        }))));
    });
    box.appendChild(list);
  }

  CW.api("/api/v1/reports").then(function (res) { reports = res.items || []; render(); })
    .catch(function (err) { CW.errorState(box, err); });
  form.addEventListener("change", function () { updateArchiveLinks(); render(); });
  updateArchiveLinks();
})();
