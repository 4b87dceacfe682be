// @ts-check
/* Messages (系统消息/发件箱, docs/API.md "Messages and notices"): the inbox (unread first) and
   the outbox with read receipts; opening a message marks it read and shows its thread, its
   files and — for a message from a person — the reply form; the sender sees who has read it.
   Admins and regulators compose to users, companies and districts (lib/recipients.js).
   New messages and receipts arrive live through the header's inbox subscription
   (header.js: `cw:inbox` events), so the list is read again without a reload. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { dateTime, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { recipientsPicker } from "./lib/recipients.js";
import { pager, table } from "./lib/table.js";
import { emptyState, errorState, loading, toast } from "./lib/ui.js";

const results = byId("results");
const pagerBox = byId("pager");
const unreadOnly = /** @type {HTMLInputElement} */ (byId("unread-only"));
const tabs = /** @type {HTMLButtonElement[]} */ (Array.from(document.querySelectorAll(".tabs .tab")));
const params = new URLSearchParams(location.search);
let box = params.get("box") === "outbox" ? "outbox" : "inbox";
let current = 1;

/** @param {any} m */
function sender(m) {
  if (m.kind === "system") return el("span", { class: "muted", text: t("messages.system") });
  const name = m.sender_name || m.sender_username;
  return el("div", { class: "cell-stack" }, el("span", { text: name }),
    m.sender_company ? el("span", { class: "muted", text: m.sender_company }) : null);
}

/** @param {any} a the audience as addressed */
function audience(a) {
  const parts = [];
  for (const kind of ["companies", "users", "districts"]) {
    const n = (a && a[kind] && a[kind].length) || 0;
    if (n) parts.push(t("messages.audience." + kind, { n }));
  }
  return parts.join(" · ") || "—";
}

/** @param {any} m */
function subjectCell(m) {
  return el("button", { type: "button", class: "btn-link msg-open", dataset: { testid: "message-open" }, onclick: () => openMessage(m.id) },
    m.subject);
}

const INBOX_COLUMNS = [
  { label: "messages.state", render: (/** @type {any} */ m) => m.read_at
    ? el("span", { class: "badge badge-neutral", dataset: { value: "read" } }, t("messages.read"))
    : el("span", { class: "badge badge-info", dataset: { value: "unread" } }, t("messages.unread")) },
  { label: "messages.subject", render: subjectCell },
  { label: "messages.from", render: sender },
  { label: "messages.received", render: (/** @type {any} */ m) => dateTime(m.created_at) },
];
const OUTBOX_COLUMNS = [
  { label: "messages.subject", render: subjectCell },
  { label: "messages.to", render: (/** @type {any} */ m) => m.reply_to ? t("messages.a_reply") : audience(m.audience) },
  { label: "messages.sent", render: (/** @type {any} */ m) => dateTime(m.created_at) },
  { label: "messages.read_by", render: (/** @type {any} */ m) => el("span", { dataset: { testid: "read-count" } },
    t("messages.read_of", { n: number(m.read_count, 0), of: number(m.recipient_count, 0) })) },
];

/** @param {number} [page] */
async function load(page) {
  current = page || 1;
  loading(results);
  clear(pagerBox);
  try {
    const env = await api("/api/v1/messages", { query: { box, unread: box === "inbox" && unreadOnly.checked ? "true" : "", page: current, page_size: config.page_size } });
    if (!env.items.length) {
      emptyState(results, box === "inbox" ? "messages.empty_inbox" : "messages.empty_outbox", null, "✉");
    } else {
      const columns = box === "inbox" ? INBOX_COLUMNS : OUTBOX_COLUMNS;
      clear(results).appendChild(table(columns, env.items, (m) => ({
        dataset: { testid: "message-row", id: String(m.id), unread: box === "inbox" && !m.read_at ? "1" : "0" },
        class: box === "inbox" && !m.read_at ? "row-unread" : null,
      })));
    }
    if (env.items.length || current > 1) pager(pagerBox, env, load);
  } catch (err) {
    errorState(results, /** @type {Error} */ (err));
  }
}

async function countUnread() {
  try {
    const c = await api("/api/v1/messages/unread-count");
    byId("inbox-unread").textContent = String(c.messages);
  } catch { /* the header shows the count too */ }
}

/** @param {string} next */
function selectBox(next) {
  box = next;
  for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.box === box));
  unreadOnly.closest("label")?.toggleAttribute("hidden", box !== "inbox");
  history.replaceState(null, "", location.pathname + (box === "outbox" ? "?box=outbox" : ""));
  load(1);
}
for (const tab of tabs) tab.addEventListener("click", () => selectBox(tab.dataset.box || "inbox"));
unreadOnly.addEventListener("change", () => load(1));

// ---------------------------------------------------------------- one message
const dialog = /** @type {HTMLDialogElement} */ (byId("message-dialog"));
const replyForm = /** @type {HTMLFormElement} */ (byId("reply-form"));
const replySend = /** @type {HTMLButtonElement} */ (byId("reply-send"));
const receipts = byId("receipts");
const receiptsFilter = /** @type {HTMLSelectElement} */ (byId("receipts-filter"));
/** @type {any} */
let opened = null;

byId("message-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => {
  opened = null;
  if (params.has("open")) history.replaceState(null, "", location.pathname);
});

/** @param {any} m */
function threadItem(m) {
  const who = m.sender_id === null ? t("messages.system") : m.sender_name || m.sender_username;
  return el("article", { class: "msg-item" + (opened && m.id === opened.id ? " msg-current" : ""), dataset: { testid: "thread-item", id: String(m.id) } },
    el("p", { class: "muted" }, el("b", { text: who }), " · ", dateTime(m.created_at)),
    el("p", { class: "msg-body", text: m.body || "" }));
}

/** @param {number} id */
async function openMessage(id) {
  try {
    const m = await api("/api/v1/messages/" + id);
    opened = m;
    byId("message-subject").textContent = m.subject;
    const who = m.kind === "system" ? t("messages.system") : m.sender_name || m.sender_username;
    byId("message-meta").textContent = m.mine
      ? t("messages.meta_sent", { when: dateTime(m.created_at), n: m.recipient_count })
      : t("messages.meta_received", { who, when: dateTime(m.created_at) });
    clear(byId("message-thread")).append(...(m.thread.length ? m.thread : [m]).map(threadItem));
    const files = byId("message-files");
    clear(files).hidden = !m.attachments.length;
    for (const f of m.attachments) {
      files.appendChild(el("li", {}, el("a", { href: "/api/v1/messages/" + m.id + "/attachments/" + f.id, dataset: { testid: "message-file" } },
        f.filename || t("messages.file"))));
    }
    byId("message-notice").hidden = !m.notice_id;
    if (m.notice_id) byId("message-notice-link").setAttribute("href", "/notices/" + m.notice_id);
    replyForm.hidden = !m.can_reply;
    replyForm.reset();
    receipts.hidden = !m.mine;
    if (m.mine) {
      receiptsFilter.value = "";
      loadReceipts(1);
    }
    if (!dialog.open) dialog.showModal();
    if (m.received && !m.read_at) {
      await api("/api/v1/messages/" + id + "/read", { method: "POST" });
      if (box === "inbox") load(current);
      countUnread();
    }
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  }
}

const RECEIPT_COLUMNS = [
  { label: "messages.recipient", render: (/** @type {any} */ r) => r.display_name ? r.display_name + " · " + r.username : r.username },
  { label: "messages.role", render: (/** @type {any} */ r) => t("role." + r.role) },
  { label: "messages.company", key: "company_name" },
  { label: "messages.read_at", render: (/** @type {any} */ r) => r.read_at
    ? el("span", { dataset: { testid: "receipt-read" } }, dateTime(r.read_at))
    : el("span", { class: "muted", dataset: { testid: "receipt-unread" } }, t("messages.unread")) },
];

/** @param {number} page */
async function loadReceipts(page) {
  if (!opened) return;
  const list = byId("receipts-list");
  const foot = byId("receipts-pager");
  loading(list);
  clear(foot);
  try {
    const env = await api("/api/v1/messages/" + opened.id + "/recipients", { query: { read: receiptsFilter.value, page, page_size: config.page_size } });
    byId("receipts-summary").textContent = t("messages.read_of", { n: number(opened.read_count, 0), of: number(opened.recipient_count, 0) });
    if (!env.items.length) emptyState(list, "messages.empty_receipts");
    else clear(list).appendChild(table(RECEIPT_COLUMNS, env.items, (r) => ({ dataset: { testid: "receipt-row", username: r.username } })));
    if (env.total > env.page_size) pager(foot, env, loadReceipts);
  } catch (err) {
    errorState(list, /** @type {Error} */ (err));
  }
}
receiptsFilter.addEventListener("change", () => loadReceipts(1));

replyForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!opened) return;
  const body = (formValues(replyForm).body || "").trim();
  if (!body) return;
  replySend.disabled = true;
  try {
    const subject = opened.subject.startsWith(t("messages.re")) ? opened.subject : t("messages.re") + opened.subject;
    await api("/api/v1/messages", { method: "POST", body: { subject: subject.slice(0, 200), body, reply_to: opened.id } });
    toast(t("messages.replied"));
    openMessage(opened.id);
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  } finally {
    replySend.disabled = false;
  }
});

// ---------------------------------------------------------------- compose
const compose = /** @type {HTMLDialogElement | null} */ (document.getElementById("compose-dialog"));
if (compose) {
  const form = /** @type {HTMLFormElement} */ (byId("compose-form"));
  const errorBox = byId("compose-error");
  const send = /** @type {HTMLButtonElement} */ (byId("compose-send"));
  const picker = recipientsPicker();
  byId("compose").addEventListener("click", () => {
    form.reset();
    errorBox.hidden = true;
    picker.reset();
    compose.showModal();
  });
  byId("compose-cancel").addEventListener("click", () => compose.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    if (!picker.size) {
      errorBox.hidden = false;
      errorBox.textContent = t("messages.to_missing");
      return;
    }
    if (!form.reportValidity()) return;
    const v = formValues(form);
    send.disabled = true;
    try {
      const sent = await api("/api/v1/messages", { method: "POST", body: { subject: (v.subject || "").trim(), body: v.body || "", to: picker.audience() } });
      compose.close();
      toast(t("messages.sent_to", { n: sent.recipient_count }));
      selectBox("outbox");
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      send.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- live
document.addEventListener("cw:inbox", (ev) => {
  const rows = /** @type {CustomEvent} */ (ev).detail || [];
  for (const row of rows) {
    if (row.kind === "message" && box === "inbox") load(current);
    if (row.kind === "message" || row.kind === "read") countUnread();
    if (row.kind === "receipt" && row.message) {
      if (box === "outbox") load(current);
      if (opened && opened.id === row.message) openMessage(opened.id);
    }
  }
});

selectBox(box);
countUnread();
const openId = Number(params.get("open"));
if (openId > 0) openMessage(openId);
