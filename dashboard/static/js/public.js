/* Public QR page: what a household may know about the cylinder in front of it (GET
   /api/v1/public/cylinders/{code}: owner, status label, last fill, next inspection — no
   personal data), the bureau's safety tips, and the complaint form. */
(function () {
  "use strict";
  var CW = window.CW, el = CW.el, t = CW.t;
  var root = document.getElementById("public-root");
  var code = root.dataset.code;
  var lang = CW.config.lang;

  function row(label, value) { return el("div", {}, el("dt", { text: t(label) }), el("dd", { text: value || "—" })); }

  function render(c) {
    CW.clear(root);
    root.appendChild(el("section", { class: "public-status", dataset: { testid: "public-status", compliance: c.compliance } },
      el("div", { class: "muted", text: t("public.status") }),
      el("div", { class: "status-word status-" + c.compliance, text: c.status_label }),
      el("div", { class: "muted mono", text: c.barcode || c.tag })));
    root.appendChild(el("section", { class: "public-card", "aria-label": t("public.details") },
      el("dl", {},
        row("public.owner", c.owner),
        row("cylinder.spec", c.spec + (c.volume_l ? " · " + c.volume_l + " L" : "")),
        row("cylinder.medium", c.medium),
        row("cylinder.manufacturer", c.manufacturer),
        row("cylinder.manufacture_date", CW.date(c.manufacture_date)),
        row("public.last_fill", c.last_fill ? CW.dateTime(c.last_fill.ts) + (c.last_fill.station ? " · " + c.last_fill.station : "") : t("public.never_filled")),
        row("cylinder.next_inspection", CW.date(c.next_inspection_date)),
        row("cylinder.scrap_date", CW.date(c.scrap_date)))));
    if (c.compliance !== "ok" && c.compliance !== "scrap_due") {
      root.appendChild(el("div", { class: "public-card alert-box " + (c.compliance === "inspection_due" ? "alert-warn" : "alert-error"), role: "alert", text: t("public.warning." + c.compliance) }));
    }
  }

  CW.api("/api/v1/public/cylinders/" + encodeURIComponent(code), { query: { lang: lang }, noRedirect: true })
    .then(render)
    .catch(function (err) {
      CW.clear(root);
      var key = err.status === 404 ? "public.not_found" : (err.status === 429 ? "public.rate_limited" : "error.load_failed");
      root.appendChild(el("section", { class: "public-status", dataset: { testid: "public-status" } },
        el("div", { class: "empty-icon", "aria-hidden": "true", text: "?" }),
        el("p", { class: "empty-title", text: t(key) }),
        el("p", { class: "muted", text: t("public.not_found_hint") })));
    });

  CW.api("/api/v1/public/articles", { query: { lang: lang }, noRedirect: true }).then(function (res) {
    var items = res.items || [];
    if (!items.length) return;
    var list = document.getElementById("tips");
    CW.clear(list);
    items.forEach(function (a) { list.appendChild(el("li", {}, el("b", { text: a.title }), el("br"), a.body)); });
  }).catch(function () { /* the built-in tips stay */ });

  var form = document.getElementById("complaint-form");
  var status = document.getElementById("complaint-status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = form.elements.text.value.trim();
    CW.clear(status);
    if (!text) {
      status.appendChild(el("div", { class: "alert-box alert-error", text: t("public.complaint_empty") }));
      form.elements.text.focus();
      return;
    }
    var body = { text: text, code: code };
    var contact = form.elements.contact.value.trim();
    if (contact) body.contact = contact;
    var btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    CW.api("/api/v1/public/complaints", { method: "POST", body: body, noRedirect: true }).then(function () {
      form.reset();
      status.appendChild(el("div", { class: "alert-box alert-ok", dataset: { testid: "complaint-ok" }, text: t("public.complaint_thanks") }));
    }).catch(function (err) {
      status.appendChild(el("div", { class: "alert-box alert-error", text: (err.status === 429 ? t("public.rate_limited") : t("error.load_failed")) + " " + (err.status === 429 ? "" : err.message) }));
    }).then(function () { btn.disabled = false; });
  });
})();
