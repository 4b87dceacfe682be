// @ts-check
/* One notice (通知/文件, GET /api/v1/notices/{id}): its text and files, the sign button for a
   recipient who has not signed (POST .../sign, idempotent), and for its sender who has signed
   and who has not (GET .../recipients?signed=true|false), kept live by the header's inbox
   subscription (header.js: a `receipt` row when someone signs). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { dateTime, number } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { pager, table } from "./lib/table.js";
import { emptyState, errorState, toast } from "./lib/ui.js";

const id = Number(config.notice_id);
const bodyBox = byId("notice-body");
const signBox = byId("notice-sign-box");
/** @type {any} */
let notice = null;

/** @param {number} bytes */
function size(bytes) {
  return bytes >= 1048576 ? number(bytes / 1048576, 1) + " MB" : number(Math.max(1, bytes / 1024), 0) + " KB";
}

/** @param {any} f */
function fileItem(f) {
  const href = "/api/v1/notices/" + id + "/attachments/" + f.id;
  const isImage = String(f.mime).startsWith("image/");
  return el("li", { class: "notice-file", dataset: { testid: "notice-file", mime: f.mime } },
    isImage ? el("img", { src: href, alt: f.filename || "", loading: "lazy", class: "notice-thumb" }) : null,
    el("a", { href, dataset: { testid: "notice-file-link" } }, f.filename || t("messages.file")),
    el("span", { class: "muted" }, size(f.size)));
}

function drawSign() {
  clear(signBox);
  if (!notice.received) return;
  if (notice.signed_at) {
    signBox.appendChild(el("span", { class: "badge badge-ok badge-lg", dataset: { testid: "notice-signed" } },
      t("notices.signed_at", { when: dateTime(notice.signed_at) })));
    return;
  }
  const button = el("button", { class: "btn btn-primary", type: "button", dataset: { testid: "sign-notice" } }, t("notices.sign"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const signed = await api("/api/v1/notices/" + id + "/sign", { method: "POST" });
      notice.signed_at = signed.signed_at;
      toast(t("notices.signed_toast"));
      drawSign();
    } catch (err) {
      toast(/** @type {Error} */ (err).message, "error");
      button.disabled = false;
    }
  });
  signBox.appendChild(button);
}

const PEOPLE = [
  { label: "messages.recipient", render: (/** @type {any} */ r) => r.display_name ? r.display_name + " · " + r.username : r.username },
  { label: "messages.role", render: (/** @type {any} */ r) => t("role." + r.role) },
  { label: "messages.company", key: "company_name" },
];
const SIGNED = [...PEOPLE, { label: "notices.signed_time", render: (/** @type {any} */ r) => dateTime(r.signed_at) }];
const UNSIGNED = [...PEOPLE, { label: "notices.reminded", render: (/** @type {any} */ r) => r.reminded_at ? dateTime(r.reminded_at) : "—" }];

/**
 * @param {boolean} signed
 * @param {number} [page]
 */
async function loadPeople(signed, page) {
  const list = byId(signed ? "signed-list" : "unsigned-list");
  const foot = byId(signed ? "signed-pager" : "unsigned-pager");
  clear(foot);
  try {
    const env = await api("/api/v1/notices/" + id + "/recipients", { query: { signed: String(signed), page: page || 1, page_size: config.page_size } });
    if (!env.items.length) emptyState(list, signed ? "notices.none_signed" : "notices.all_signed");
    else clear(list).appendChild(table(signed ? SIGNED : UNSIGNED, env.items, (r) => ({ dataset: { testid: "person-row", username: r.username } })));
    if (env.total > env.page_size) pager(foot, env, (p) => loadPeople(signed, p));
  } catch (err) {
    errorState(list, /** @type {Error} */ (err));
  }
}

async function loadProgress() {
  const fresh = await api("/api/v1/notices/" + id);
  notice.signed_count = fresh.signed_count;
  byId("progress-summary").textContent = t("notices.signed_of", { n: number(fresh.signed_count, 0), of: number(fresh.recipient_count, 0) });
  await Promise.all([loadPeople(true), loadPeople(false)]);
}

async function load() {
  try {
    notice = await api("/api/v1/notices/" + id);
  } catch (err) {
    errorState(bodyBox, /** @type {Error} */ (err));
    return;
  }
  byId("notice-title").textContent = notice.title;
  document.title = notice.title + " · " + document.title.split(" · ").slice(-1)[0];
  const who = notice.sender_name || notice.sender_username;
  byId("notice-meta").textContent = t("notices.meta", { who, when: dateTime(notice.created_at) })
    + (notice.deadline ? " · " + t("notices.deadline_at", { when: dateTime(notice.deadline) }) : "");
  clear(bodyBox).appendChild(el("section", { class: "card" },
    el("p", { class: "msg-body", dataset: { testid: "notice-text" }, text: notice.body || "" }),
    notice.attachments.length
      ? el("ul", { class: "notice-files", dataset: { testid: "notice-files" } }, notice.attachments.map(fileItem))
      : el("p", { class: "muted", text: t("notices.no_files") })));
  drawSign();
  if (notice.mine) {
    byId("notice-progress").hidden = false;
    await loadProgress();
  }
}

document.addEventListener("cw:inbox", (ev) => {
  const rows = /** @type {CustomEvent} */ (ev).detail || [];
  if (notice && notice.mine && rows.some((/** @type {any} */ r) => r.kind === "receipt" && r.notice === id)) loadProgress().catch(() => {});
});

load();
