// @ts-check
/* The customer's rectification notice opened by its share link (/n/<token>, no login): from
   GET /api/v1/public/safety-notices/{token} — the customer's name, the inspection's date, each
   failed item with its deadline, and the company's order phone; nothing else about anyone.
   A forged or expired link shows a clear message and no data. Printable (app.css "safety"). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, text } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";

const root = byId("share-root");

/** @param {string} label @param {string} value @param {string} testid */
function line(label, value, testid) {
  return el("div", { dataset: { testid } }, el("dt", { text: t(label) }), el("dd", { text: value }));
}

/** @param {any} n */
function draw(n) {
  const rows = n.items || [];
  const open = rows.filter((/** @type {any} */ i) => i.state === "open");
  clear(root).append(
    el("header", { class: "safety-notice-head" },
      el("h2", { text: t("safety_share.heading") }),
      el("p", { class: "muted", text: t("safety_share.number", { id: n.inspection_id }) })),
    el("dl", { class: "safety-notice-dl" },
      line("safety_share.customer", text(n.customer && n.customer.name), "share-customer"),
      line("safety_share.inspected_at", date(n.inspected_at), "share-date"),
      line("safety_share.company", text(n.company && n.company.name), "share-company")),
    rows.length
      ? el("p", { text: t("safety_share.intro", { count: rows.length }) })
      : el("p", { dataset: { testid: "share-nothing" }, text: t("safety_share.nothing") }),
    rows.length ? el("table", { class: "data safety-notice-table" },
      el("thead", {}, el("tr", {}, ["safety_share.no", "safety_share.item", "safety_share.deadline", "safety_share.state"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, rows.map((/** @type {any} */ i, /** @type {number} */ k) => el("tr", { dataset: { testid: "share-item", code: i.code } },
        el("td", { text: String(k + 1) }),
        el("td", { text: lang === "en" ? i.text_en || i.text_zh : i.text_zh }),
        el("td", { dataset: { testid: "share-deadline" }, text: date(i.deadline) }),
        el("td", { text: t(i.state === "closed" ? "safety_share.closed" : "safety_share.open") }))))) : null,
    open.length ? el("p", { text: t("safety_share.fix_by") }) : null,
    el("p", { class: "safety-notice-phone", dataset: { testid: "share-phone" } },
      t("safety_share.call", { company: text(n.company && n.company.name), phone: text(n.company && n.company.order_phone) })),
    el("p", { class: "muted no-print", text: t("safety_share.valid_until", { date: date(n.expires) }) }),
  );
  document.body.dataset.ready = "1";
}

/** @param {any} err */
function refused(err) {
  const reason = err && err.details && err.details.reason;
  const key = err && err.status === 429 ? "public.rate_limited"
    : reason === "expired" ? "safety_share.expired"
      : err && err.status === 404 ? "safety_share.invalid" : "safety_share.load_failed";
  clear(root).appendChild(el("div", { class: "alert-box alert-error", role: "alert", dataset: { testid: "share-refused", reason: reason || "" }, text: t(key) }));
  byId("share-print").hidden = true;
  document.body.dataset.ready = "1";
}

byId("share-print").addEventListener("click", () => window.print());

api("/api/v1/public/safety-notices/" + encodeURIComponent(String(config.token || "")))
  .then(draw)
  .catch(refused);
