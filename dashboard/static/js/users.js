/* User administration (admin: everyone; company admin: its station staff): list, create,
   disable/enable (GET/POST/PATCH /api/v1/users). */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el, t = CW.t;
  var me = CW.config.user || {};
  var companies = {};
  (CW.config.companies || []).forEach(function (c) { companies[c.id] = c.name; });

  function toggle(u, btn) {
    btn.disabled = true;
    CW.api("/api/v1/users/" + u.id, { method: "PATCH", body: { active: !u.active } }).then(function () {
      CW.toast(t(u.active ? "users.disabled" : "users.enabled", { name: u.username }));
      page.reload();
    }).catch(function (err) { btn.disabled = false; CW.toast(err.message, "error"); });
  }

  var page = CW.listPage({
    endpoint: "/api/v1/users",
    emptyTitle: "users.empty",
    emptyHint: "users.empty_hint",
    rowAttrs: function (u) { return { dataset: { username: u.username } }; },
    columns: [
      { label: "user.username", render: function (u) { return el("span", { class: "mono", text: u.username }); } },
      { label: "user.display_name", render: function (u) { return CW.text(u.display_name); } },
      { label: "user.role", render: function (u) { return t("role." + u.role); } },
      { label: "user.company", render: function (u) { return CW.text(companies[u.company_id]); } },
      { label: "user.districts", render: function (u) { return (u.districts || []).join(", ") || "—"; } },
      { label: "user.active", render: function (u) {
        return el("span", { class: "badge " + (u.active ? "badge-ok" : "badge-scrapped"), text: t("user.active." + (u.active ? "true" : "false")) });
      } },
      { label: "user.last_login", render: function (u) { return CW.dateTime(u.last_login_at); } },
      { label: "common.actions", render: function (u) {
        var mayChange = u.id !== me.user_id && (me.role === "admin" || u.role === "station_operator");
        if (!mayChange) return "—";
        var btn = el("button", { class: "btn btn-sm" + (u.active ? "" : " btn-primary"), type: "button", dataset: { action: u.active ? "disable" : "enable" } }, t(u.active ? "users.disable" : "users.enable"));
        btn.addEventListener("click", function () { toggle(u, btn); });
        return btn;
      } }
    ]
  });

  // ---------------------------------------------------------------- create dialog
  var dialog = document.getElementById("user-dialog");
  var form = document.getElementById("user-form");
  var errorBox = document.getElementById("user-form-error");

  function syncRoleFields() {
    var role = form.elements.role.value;
    form.querySelectorAll("[data-for-roles]").forEach(function (node) {
      node.hidden = node.dataset.forRoles.split(" ").indexOf(role) < 0;
    });
    var site = form.elements.site_id;
    if (site) Array.prototype.forEach.call(site.options, function (o) {
      if (!o.value) return;
      var kind = o.dataset.kind;
      o.hidden = role === "inspector" ? kind !== "inspection_agency" : kind === "inspection_agency";
    });
  }
  form.elements.role.addEventListener("change", syncRoleFields);

  document.getElementById("new-user").addEventListener("click", function () {
    form.reset();
    errorBox.hidden = true;
    syncRoleFields();
    dialog.showModal();
  });
  document.getElementById("user-cancel").addEventListener("click", function () { dialog.close(); });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = CW.formValues(form);
    var body = { username: (v.username || "").trim(), password: v.password || "", role: v.role };
    if (v.display_name) body.display_name = v.display_name;
    if (v.company_id && !form.elements.company_id.closest("[data-for-roles]").hidden) body.company_id = Number(v.company_id);
    if (v.site_id && !form.elements.site_id.closest("[data-for-roles]").hidden) body.site_id = Number(v.site_id);
    var boxes = form.querySelectorAll('input[name="districts"]:checked');
    if (boxes.length && ["regulator", "officer"].indexOf(v.role) >= 0) body.districts = Array.prototype.map.call(boxes, function (b) { return b.value; });
    document.getElementById("user-save").disabled = true;
    CW.api("/api/v1/users", { method: "POST", body: body }).then(function () {
      dialog.close();
      CW.toast(t("users.created", { name: body.username }));
      page.reload();
    }).catch(function (err) {
      errorBox.hidden = false;
      errorBox.textContent = err.message;
    }).then(function () { document.getElementById("user-save").disabled = false; });
  });
})();
