/* CylinderWatch page helpers (no build step): config, strings, REST calls with the CSRF
   header, safe DOM building, formatting, badges, pagination, empty states, base map.
   Reused by the big screen and the officer PWA: everything hangs off window.CW. */
(function () {
  "use strict";

  var configEl = document.getElementById("cw-config");
  var config = configEl ? JSON.parse(configEl.textContent) : { strings: {} };
  var S = config.strings || {};

  /** A UI string by key, with {name} placeholders filled from vars. */
  function t(key, vars) {
    var s = Object.prototype.hasOwnProperty.call(S, key) ? S[key] : key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] !== undefined && vars[k] !== null ? String(vars[k]) : m; });
    }
    return s;
  }

  /** A string that may be missing: the key's value or a fallback (never the raw key). */
  function tOr(key, fallback) {
    return Object.prototype.hasOwnProperty.call(S, key) ? S[key] : fallback;
  }

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }

  function ApiError(status, code, message, details) {
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.message = message;
    this.details = details;
  }
  ApiError.prototype = Object.create(Error.prototype);

  /** Query string from an object, dropping empty values. */
  function qs(query) {
    var p = new URLSearchParams();
    Object.keys(query || {}).forEach(function (k) {
      var v = query[k];
      if (v === undefined || v === null || v === "") return;
      p.append(k, String(v));
    });
    var s = p.toString();
    return s ? "?" + s : "";
  }

  /** Call the platform's JSON API with the session cookie (and CSRF header on writes). */
  function api(path, opts) {
    opts = opts || {};
    var method = (opts.method || "GET").toUpperCase();
    var headers = { "Accept": "application/json" };
    var body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    if (method !== "GET" && method !== "HEAD") {
      var token = cookie(config.csrf_cookie || "cylwatch_csrf");
      if (token) headers["X-CSRF-Token"] = token;
    }
    return fetch(path + qs(opts.query), { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 401 && config.user && !opts.noRedirect) {
          window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
        }
        var ctype = res.headers.get("Content-Type") || "";
        var parse = ctype.indexOf("application/json") >= 0 ? res.json() : res.text().then(function (x) { return { text: x }; });
        return parse.then(function (data) {
          if (!res.ok) {
            var err = (data && data.error) || {};
            throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.statusText, err.details);
          }
          return data;
        });
      });
  }

  /** Build an element: el("a", {href: "/x", class: "y", text: "z"}, child, ...). Never innerHTML. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.keys(v).forEach(function (d) { node.dataset[d] = v[d]; });
      else if (k.slice(0, 2) === "on" && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (v === true) node.setAttribute(k, "");
      else node.setAttribute(k, String(v));
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x) node.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
      else node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); return node; }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  /** "2026-01-31 14:05" in the browser's zone (the city's for the people using it). */
  function dateTime(value) {
    if (!value) return "—";
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function date(value) {
    if (!value) return "—";
    return String(value).slice(0, 10);
  }

  function number(n, digits) {
    if (n === undefined || n === null || n === "") return "—";
    var x = Number(n);
    if (isNaN(x)) return String(n);
    return x.toLocaleString(config.lang === "en" ? "en-US" : "zh-CN", { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  function text(v) { return v === undefined || v === null || v === "" ? "—" : String(v); }

  function badge(kind, value, label) {
    return el("span", { class: "badge badge-" + value, dataset: { value: value } }, label);
  }
  function complianceBadge(code) { return code ? badge("compliance", code, t("compliance." + code)) : el("span", { class: "muted", text: "—" }); }
  function severityBadge(sev) { return badge("severity", sev, t("severity." + sev)); }
  function stateBadge(state) { return badge("state", state, t("alert.state." + state)); }
  function alertKind(kind) { return tOr("alert.kind." + kind, kind); }
  function statusLabel(status) { return tOr("status." + status, status); }

  /** Replace a container's content with an empty state (icon, title, hint). */
  function emptyState(container, titleKey, hintKey, icon) {
    clear(container);
    container.appendChild(el("div", { class: "empty-state", dataset: { testid: "empty-state" } },
      el("div", { class: "empty-icon", "aria-hidden": "true", text: icon || "∅" }),
      el("p", { class: "empty-title", text: t(titleKey) }),
      hintKey ? el("p", { class: "muted", text: t(hintKey) }) : null));
  }

  function errorState(container, err) {
    clear(container);
    var msg = err && err.status === 403 ? t("error.forbidden.body") : (err && err.status === 404 ? t("error.api_missing") : (err && err.message) || String(err));
    container.appendChild(el("div", { class: "alert-box alert-error", role: "alert", text: t("error.load_failed") + " " + msg }));
  }

  function loading(container) {
    clear(container);
    container.appendChild(el("div", { class: "loading", text: t("common.loading") }));
  }

  /** Pager: "N total · page X / Y" and prev/next buttons calling onPage(page). */
  function pager(container, env, onPage) {
    clear(container);
    var pages = Math.max(1, Math.ceil((env.total || 0) / (env.page_size || 1)));
    container.appendChild(el("span", { dataset: { testid: "total" }, text: t("pager.summary", { total: number(env.total, 0), page: env.page, pages: pages }) }));
    var nav = el("nav", { class: "pager", "aria-label": t("pager.label") },
      el("button", { class: "btn btn-sm", type: "button", disabled: env.page <= 1, onclick: function () { onPage(env.page - 1); } }, t("pager.prev")),
      el("button", { class: "btn btn-sm", type: "button", disabled: env.page >= pages, onclick: function () { onPage(env.page + 1); } }, t("pager.next")));
    container.appendChild(nav);
  }

  /** A small transient notice (role=status region). */
  function toast(message, kind) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var node = el("div", { class: "toast" + (kind === "error" ? " error" : ""), text: message });
    region.appendChild(node);
    setTimeout(function () { node.remove(); }, 4000);
  }

  /** Form fields as an object (empty ones dropped). */
  function formValues(form) {
    var out = {};
    new FormData(form).forEach(function (v, k) { if (v !== "") out[k] = v; });
    return out;
  }

  /** Fill a form from the page's query string (shareable, back-button friendly filters). */
  function formFromUrl(form) {
    var params = new URLSearchParams(location.search);
    params.forEach(function (v, k) { if (form.elements[k]) form.elements[k].value = v; });
    return params;
  }

  function urlFromForm(values) {
    history.replaceState(null, "", location.pathname + qs(values));
  }

  /** Positions shown on a GCJ-02 base map (AMap) are shifted; otherwise WGS-84 as stored. */
  function toDisplay(lat, lon) {
    if (config.tiles && config.tiles.gcj02 && window.CWCoords) return window.CWCoords.wgs84ToGcj02(lat, lon);
    return [lat, lon];
  }

  /** Add the configured base layer (none: blank background) to a Leaflet map. */
  function baseLayer(map) {
    var tiles = config.tiles;
    if (!tiles || !window.L) return null;
    var opts = { attribution: tiles.attribution, maxZoom: tiles.max_zoom };
    if (tiles.subdomains) opts.subdomains = tiles.subdomains;
    var layer = window.L.tileLayer(tiles.url, opts).addTo(map);
    if (tiles.overlay_url) window.L.tileLayer(tiles.overlay_url, opts).addTo(map);
    return layer;
  }

  /** A date input (local day) as the ISO instant of its start; endOfDay: the next day's start. */
  function dayInstant(value, endOfDay) {
    if (!value) return undefined;
    var d = new Date(value + "T00:00:00");
    if (isNaN(d.getTime())) return undefined;
    if (endOfDay) d.setDate(d.getDate() + 1);
    return d.toISOString();
  }

  /** A table of rows: columns are {label, render(row) -> node|string, cls}. */
  function table(columns, rows, rowAttrs) {
    var head = el("tr", {}, columns.map(function (c) { return el("th", { scope: "col", class: c.cls || null, text: t(c.label) }); }));
    var body = el("tbody", {}, rows.map(function (r) {
      return el("tr", rowAttrs ? rowAttrs(r) : {}, columns.map(function (c) {
        var v = c.render ? c.render(r) : text(r[c.key]);
        return el("td", { class: c.cls || null }, v === undefined || v === null ? "—" : v);
      }));
    }));
    return el("div", { class: "table-wrap" }, el("table", { class: "data" }, el("thead", {}, head), body));
  }

  /** A search page: filter form in the URL, paged rows from a list endpoint, empty state. */
  function listPage(opts) {
    var form = document.getElementById(opts.form || "search-form");
    var results = document.getElementById(opts.results || "results");
    var pagerEl = document.getElementById(opts.pager || "pager");
    var current = 1;
    function load(page) {
      current = page || 1;
      var values = formValues(form);
      var query = opts.query ? opts.query(Object.assign({}, values)) : Object.assign({}, values);
      query.page = current;
      query.page_size = opts.pageSize || config.page_size || 50;
      urlFromForm(current > 1 ? Object.assign({ page: current }, values) : values);
      loading(results);
      clear(pagerEl);
      if (opts.onQuery) opts.onQuery(values);
      return api(opts.endpoint, { query: query }).then(function (env) {
        var items = env.items || [];
        if (!items.length) {
          // with filters set, "nothing matches" is the honest hint, not "all is well"
          var filtered = Object.keys(values).length > 0;
          emptyState(results, opts.emptyTitle || "common.empty",
            filtered ? "common.empty_hint" : (opts.emptyHint || "common.empty_hint"), filtered ? "∅" : opts.emptyIcon);
        } else {
          clear(results);
          results.appendChild(table(opts.columns, items, opts.rowAttrs));
        }
        if (items.length || current > 1) pager(pagerEl, env, load);
        return env;
      }).catch(function (err) { errorState(results, err); });
    }
    var params = formFromUrl(form);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); load(1); });
    form.addEventListener("reset", function () { setTimeout(function () { load(1); }, 0); });
    var ready = load(Number(params.get("page")) || 1);
    return { load: load, reload: function () { return load(current); }, ready: ready };
  }

  window.CW = {
    config: config, t: t, tOr: tOr, api: api, ApiError: ApiError, qs: qs, el: el, clear: clear,
    dateTime: dateTime, date: date, number: number, text: text, cookie: cookie,
    complianceBadge: complianceBadge, severityBadge: severityBadge, stateBadge: stateBadge,
    alertKind: alertKind, statusLabel: statusLabel, emptyState: emptyState, errorState: errorState,
    loading: loading, pager: pager, toast: toast, formValues: formValues, formFromUrl: formFromUrl,
    urlFromForm: urlFromForm, toDisplay: toDisplay, baseLayer: baseLayer, dayInstant: dayInstant,
    table: table, listPage: listPage
  };
})();
