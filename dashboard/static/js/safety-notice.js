// @ts-check
/* The rectification notice (整改通知书) handed to the customer after an inspection
   (GET /api/v1/safety-inspections/{id}/notice): what failed, by when it must be fixed, whom to
   call. Built for paper: the print style sheet (app.css "safety") drops everything else. The
   data needs a login; "copy share link" asks GET .../notice-link for an expiring link the
   customer opens without one (/n/<token>, safety_share.js). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { lang, t } from "./lib/i18n.js";
import { errorState, toast } from "./lib/ui.js";

const root = byId("notice-root");

/**
 * @param {string} label
 * @param {string} value
 * @param {string} [testid]
 */
function line(label, value, testid) {
  return el("div", { dataset: testid ? { testid } : {} }, el("dt", { text: t(label) }), el("dd", { text: value }));
}

/** @param {any} n */
function draw(n) {
  const open = (n.items || []).filter((/** @type {any} */ i) => i.state === "open");
  const rows = n.items || [];
  clear(root).append(
    el("header", { class: "safety-notice-head" },
      el("h1", { text: t("safety.notice.heading") }),
      el("p", { class: "muted", text: t("safety.notice.number", { id: n.inspection_id }) })),
    el("dl", { class: "safety-notice-dl" },
      line("safety.notice.customer", text(n.customer && n.customer.name), "notice-customer"),
      line("safety.notice.account", text(n.customer && n.customer.account_no)),
      line("safety.address", text(n.customer && n.customer.address)),
      line("safety.col.inspected_at", dateTime(n.inspected_at)),
      line("safety.col.inspector", text(n.inspector_name)),
      line("safety.col.company", text(n.company && n.company.name))),
    rows.length
      ? el("p", { text: t("safety.notice.intro", { count: rows.length }) })
      : el("p", { dataset: { testid: "notice-nothing" }, text: t("safety.notice.nothing") }),
    rows.length ? el("table", { class: "data safety-notice-table" },
      el("thead", {}, el("tr", {}, ["safety.notice.no", "safety.rect.item", "safety.rect.deadline", "safety.rect.state"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, rows.map((/** @type {any} */ i, /** @type {number} */ k) => el("tr", { dataset: { testid: "notice-item", code: i.code } },
        el("td", { text: String(k + 1) }),
        el("td", { text: lang === "en" ? i.text_en || i.text_zh : i.text_zh }),
        el("td", { text: date(i.deadline) }),
        el("td", { text: t(i.state === "closed" ? "safety.rect.closed" : "safety.rect.open") }))))) : null,
    open.length ? el("p", { text: t("safety.notice.fix_by") }) : null,
    el("p", { class: "safety-notice-phone", dataset: { testid: "notice-phone" } },
      t("safety.notice.call", { company: text(n.company && n.company.name), phone: text(n.company && n.company.order_phone) })),
    el("div", { class: "safety-notice-sign" },
      el("span", { text: t("safety.notice.customer_sign") }),
      el("span", { text: t("safety.notice.date_sign") })),
  );
  document.title = t("safety.notice.heading") + " · " + n.inspection_id;
  document.body.dataset.ready = "1";
}

byId("notice-print").addEventListener("click", () => window.print());

const shareButton = /** @type {HTMLButtonElement} */ (byId("notice-share"));
shareButton.addEventListener("click", async () => {
  shareButton.disabled = true;
  try {
    const link = await api("/api/v1/safety-inspections/" + Number(config.record_id) + "/notice-link");
    const input = /** @type {HTMLInputElement} */ (byId("notice-share-url"));
    input.value = link.url;
    byId("notice-share-box").hidden = false;
    input.select();
    try {
      await navigator.clipboard.writeText(link.url);
      toast(t("safety_share.copied", { date: date(link.expires) }));
    } catch {
      toast(t("safety_share.copy_failed"), "error");
    }
  } catch (err) {
    toast(err instanceof Error ? err.message : String(err), "error");
  } finally {
    shareButton.disabled = false;
  }
});

api("/api/v1/safety-inspections/" + Number(config.record_id) + "/notice")
  .then(draw)
  .catch((err) => errorState(root, err));
