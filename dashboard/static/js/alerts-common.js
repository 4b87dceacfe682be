/* Acknowledge / resolve an alert (POST /api/v1/alerts/{id}/ack|resolve {note}) — shared by
   the dashboard's side list and the alerts centre, so both behave the same. */
(function () {
  "use strict";
  var CW = window.CW;

  /** POST the transition; resolves with the updated alert row. */
  function transition(id, action, note) {
    var body = {};
    if (note) body.note = note;
    return CW.api("/api/v1/alerts/" + encodeURIComponent(id) + "/" + action, { method: "POST", body: body })
      .then(function (res) { return res && res.alert ? res.alert : res; });
  }

  // Who may act (server.api.alerts): acknowledging includes the company concerned;
  // resolving — closing a finding — is the supervisor's decision only.
  var ROLE = CW.config.user && CW.config.user.role;
  var CAN_ACK = ["admin", "regulator", "officer", "company_admin"].indexOf(ROLE) >= 0;
  var CAN_RESOLVE = ["admin", "regulator", "officer"].indexOf(ROLE) >= 0;

  /** The action row for one alert (note, acknowledge, resolve), or null if none applies. */
  function actions(alert, onChanged) {
    var el = CW.el;
    var showAck = CAN_ACK && alert.state === "open";
    var showResolve = CAN_RESOLVE && alert.state !== "resolved";
    if (!showAck && !showResolve) return null;
    var noteId = "note-" + alert.id + "-" + Math.random().toString(36).slice(2, 7);
    var input = el("input", { id: noteId, name: "note", maxlength: "2000", placeholder: CW.t("alert.note_placeholder"), "aria-label": CW.t("alert.note") });
    function run(action, btn) {
      btn.disabled = true;
      transition(alert.id, action, input.value.trim()).then(function (updated) {
        CW.toast(CW.t(action === "ack" ? "alert.acked" : "alert.resolved"));
        onChanged(Object.assign({}, alert, updated || {}, { state: (updated && updated.state) || (action === "ack" ? "acknowledged" : "resolved") }));
      }).catch(function (err) {
        btn.disabled = false;
        CW.toast(CW.t("alert.action_failed") + " " + err.message, "error");
      });
    }
    var ack = showAck ? el("button", { class: "btn btn-sm", type: "button", dataset: { action: "ack" } }, CW.t("alert.ack")) : null;
    var resolve = showResolve ? el("button", { class: "btn btn-sm btn-primary", type: "button", dataset: { action: "resolve" } }, CW.t("alert.resolve")) : null;
    if (ack) ack.addEventListener("click", function () { run("ack", ack); });
    if (resolve) resolve.addEventListener("click", function () { run("resolve", resolve); });
    return el("div", { class: "alert-actions" }, input, ack, resolve);
  }

  /** "金水区 · 站点 STA-A1 · cylinder TAG-1" — where and what an alert is about. */
  function subject(alert, lookups) {
    lookups = lookups || {};
    var parts = [];
    if (alert.district && lookups.districts && lookups.districts[alert.district]) parts.push(lookups.districts[alert.district]);
    var site = alert.site_name || (alert.site_id && lookups.sites && lookups.sites[alert.site_id]);
    var company = alert.company_name || (alert.company_id && lookups.companies && lookups.companies[alert.company_id]);
    if (site) parts.push(site);
    if (company) parts.push(company);
    return parts.join(" · ");
  }

  /** The facts of an alert's details in words: weights, refusal reasons, gas level. */
  function details(alert) {
    var d = alert.details || {};
    var bits = [];
    if (d.net_kg !== undefined) bits.push(CW.t("alert.detail.net_kg", { v: CW.number(d.net_kg) }));
    if (d.max_fill_kg !== undefined) bits.push(CW.t("alert.detail.max_kg", { v: CW.number(d.max_fill_kg) }));
    if (d.reasons) bits.push([].concat(d.reasons).map(function (r) { return CW.tOr("reason." + r, r); }).join("、"));
    if (d.leak_ppm !== undefined) bits.push(CW.t("alert.detail.leak_ppm", { v: CW.number(d.leak_ppm, 0) }));
    if (d.full !== undefined && d.permitted !== undefined) bits.push(CW.t("alert.detail.stock", { full: d.full, permitted: d.permitted }));
    return bits.join(" · ");
  }

  CW.alerts = { details: details, transition: transition, actions: actions, subject: subject, canAck: CAN_ACK, canResolve: CAN_RESOLVE };
})();
