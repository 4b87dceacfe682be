// @ts-check
/* Notices to sign (通知/文件, docs/API.md "Messages and notices"): those addressed to me,
   awaiting my signature first; for admins and regulators the notices they sent with how many
   have signed, and the form that sends one — recipients (lib/recipients.js), title, text,
   deadline and PDF documents or pictures, as multipart/form-data. A new notice arrives live
   through the header's inbox subscription (header.js: `cw:inbox` events). */
import { ApiError, api, csrfToken } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { dateTime, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { recipientsPicker } from "./lib/recipients.js";
import { pager, table } from "./lib/table.js";
import { emptyState, errorState, loading, toast } from "./lib/ui.js";

const results = byId("results");
const pagerBox = byId("pager");
const unsignedOnly = /** @type {HTMLInputElement} */ (byId("unsigned-only"));
const tabs = /** @type {HTMLButtonElement[]} */ (Array.from(document.querySelectorAll(".tabs .tab")));
const params = new URLSearchParams(location.search);
let box = params.get("box") === "outbox" && config.can_send ? "outbox" : "inbox";
let current = 1;

/** @param {any} n */
function titleLink(n) {
  return el("a", { href: "/notices/" + n.id, dataset: { testid: "notice-open" } }, n.title);
}

/** @param {any} n */
function deadline(n) {
  if (!n.deadline) return el("span", { class: "muted", text: "—" });
  const late = new Date(n.deadline).getTime() < Date.now() && !n.signed_at;
  return el("span", { class: late ? "text-danger" : null }, dateTime(n.deadline));
}

/** @param {any} n */
function signState(n) {
  return n.signed_at
    ? el("span", { class: "badge badge-ok", dataset: { value: "signed" } }, t("notices.signed"))
    : el("span", { class: "badge badge-warning", dataset: { value: "unsigned" } }, t("notices.unsigned"));
}

const INBOX_COLUMNS = [
  { label: "notices.state", render: signState },
  { label: "notices.notice_title", render: titleLink },
  { label: "messages.from", render: (/** @type {any} */ n) => n.sender_name || n.sender_username },
  { label: "notices.deadline", render: deadline },
  { label: "notices.files", render: (/** @type {any} */ n) => n.attachments ? String(n.attachments) : "—" },
  { label: "messages.received", render: (/** @type {any} */ n) => dateTime(n.created_at) },
];
const OUTBOX_COLUMNS = [
  { label: "notices.notice_title", render: titleLink },
  { label: "notices.deadline", render: deadline },
  { label: "notices.progress", render: (/** @type {any} */ n) => el("span", { dataset: { testid: "signed-count" } },
    t("notices.signed_of", { n: number(n.signed_count, 0), of: number(n.recipient_count, 0) })) },
  { label: "notices.reminded", render: (/** @type {any} */ n) => n.reminded_at ? dateTime(n.reminded_at) : "—" },
  { label: "messages.sent", render: (/** @type {any} */ n) => dateTime(n.created_at) },
];

/** @param {number} [page] */
async function load(page) {
  current = page || 1;
  loading(results);
  clear(pagerBox);
  try {
    const env = await api("/api/v1/notices", { query: { box, signed: box === "inbox" && unsignedOnly.checked ? "false" : "", page: current, page_size: config.page_size } });
    if (!env.items.length) {
      emptyState(results, box === "inbox" ? "notices.empty_inbox" : "notices.empty_outbox", null, "✎");
    } else {
      clear(results).appendChild(table(box === "inbox" ? INBOX_COLUMNS : OUTBOX_COLUMNS, env.items, (n) => ({
        dataset: { testid: "notice-row", id: String(n.id), signed: n.signed_at ? "1" : "0" },
      })));
    }
    if (env.items.length || current > 1) pager(pagerBox, env, load);
  } catch (err) {
    errorState(results, /** @type {Error} */ (err));
  }
}

async function countUnsigned() {
  try {
    const c = await api("/api/v1/messages/unread-count");
    byId("notices-unsigned").textContent = String(c.notices);
  } catch { /* the header shows it too */ }
}

/** @param {string} next */
function selectBox(next) {
  box = next;
  for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.box === box));
  unsignedOnly.closest("label")?.toggleAttribute("hidden", box !== "inbox");
  history.replaceState(null, "", location.pathname + (box === "outbox" ? "?box=outbox" : ""));
  load(1);
}
for (const tab of tabs) tab.addEventListener("click", () => selectBox(tab.dataset.box || "inbox"));
unsignedOnly.addEventListener("change", () => load(1));

// ---------------------------------------------------------------- send one
/**
 * POST a multipart form with the session's CSRF token; the platform's error shape as ApiError.
 * @param {string} path
 * @param {FormData} data
 */
async function postForm(path, data) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  let res;
  try {
    res = await fetch(path, { method: "POST", body: data, headers, credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(0, "network_error", err instanceof Error ? err.message : String(err));
  }
  const body = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json() : {};
  if (!res.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText, e.details);
  }
  return body;
}

const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("notice-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("notice-form"));
  const errorBox = byId("notice-error");
  const send = /** @type {HTMLButtonElement} */ (byId("notice-send"));
  const files = /** @type {HTMLInputElement} */ (form.elements.namedItem("file"));
  const picker = recipientsPicker();

  byId("new-notice").addEventListener("click", () => {
    form.reset();
    errorBox.hidden = true;
    picker.reset();
    dialog.showModal();
  });
  byId("notice-cancel").addEventListener("click", () => dialog.close());

  /** @param {string} message */
  function fail(message) {
    errorBox.hidden = false;
    errorBox.textContent = message;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    if (!picker.size) return fail(t("messages.to_missing"));
    if (!form.reportValidity()) return;
    const chosen = Array.from(files.files || []);
    if (chosen.length > config.attachments_max) return fail(t("notices.too_many_files", { n: config.attachments_max }));
    const v = formValues(form);
    const data = new FormData();
    data.append("title", (v.title || "").trim());
    data.append("body", v.body || "");
    if (v.deadline) data.append("deadline", v.deadline); // the city's local time (the API's rule)
    data.append("to", JSON.stringify(picker.audience()));
    for (const f of chosen) data.append("file", f, f.name);
    send.disabled = true;
    try {
      const made = await postForm("/api/v1/notices", data);
      dialog.close();
      toast(t("notices.sent_to", { n: made.recipient_count }));
      selectBox("outbox");
    } catch (err) {
      fail(/** @type {Error} */ (err).message);
    } finally {
      send.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- live
document.addEventListener("cw:inbox", (ev) => {
  const rows = /** @type {CustomEvent} */ (ev).detail || [];
  if (rows.some((/** @type {any} */ r) => r.kind === "notice" || r.kind === "signed")) {
    if (box === "inbox") load(current);
    countUnsigned();
  }
  if (rows.some((/** @type {any} */ r) => r.kind === "receipt" && r.notice) && box === "outbox") load(current);
});

selectBox(box);
countUnsigned();
const openId = Number(params.get("open"));
if (openId > 0) location.replace("/notices/" + openId);
