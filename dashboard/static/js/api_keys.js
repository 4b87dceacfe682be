// @ts-check
/* API keys of the data interface (GET/POST/DELETE /api/v1/auth/api-keys): the list, a new
   key shown once (with a copy button and a warning that it will not be shown again), and
   revocation after a confirmation. The key itself lives only in the dialog's input until
   the dialog closes; the list never has it (only a hash is stored). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { badge, toast } from "./lib/ui.js";

const manages = Boolean(config.manages);

// ---------------------------------------------------------------- revoke (with a confirmation)
const revokeDialog = /** @type {HTMLDialogElement} */ (byId("revoke-dialog"));
const revokeForm = /** @type {HTMLFormElement} */ (byId("revoke-form"));
const revokeBtn = /** @type {HTMLButtonElement} */ (byId("revoke-confirm"));
/** @type {any} */
let revoking = null;

/** @param {any} k */
function askRevoke(k) {
  revoking = k;
  byId("revoke-text").textContent = t("api_keys.revoke_question", { name: k.name, prefix: k.prefix });
  revokeBtn.disabled = false;
  revokeDialog.showModal();
}

byId("revoke-cancel").addEventListener("click", () => revokeDialog.close());
revokeForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const k = revoking;
  if (!k) return;
  revokeBtn.disabled = true;
  try {
    await api("/api/v1/auth/api-keys/" + k.id, { method: "DELETE" });
    revokeDialog.close();
    toast(t("api_keys.revoked", { name: k.name }));
    list.reload();
  } catch (err) {
    revokeBtn.disabled = false;
    toast(/** @type {Error} */ (err).message, "error");
  }
});

/** @param {any} k */
function actions(k) {
  if (!k.active) return "—";
  return el("button", {
    class: "btn btn-sm btn-danger",
    type: "button",
    dataset: { action: "revoke", testid: "revoke" },
    onclick: () => askRevoke(k),
  }, t("api_keys.revoke"));
}

/** @param {any} k */
function state(k) {
  return k.active
    ? badge("ok", t("api_keys.state.active"))
    : el("span", { title: dateTime(k.revoked_at) }, badge("scrapped", t("api_keys.state.revoked")));
}

/** @type {import("./lib/table.js").Column[]} */
const columns = [
  { label: "api_keys.name", key: "name", sort: (k) => k.name },
  { label: "api_keys.prefix", render: (k) => el("span", { class: "mono", text: k.prefix + "…" }) },
];
if (manages) columns.push({ label: "api_keys.owner", render: (k) => el("span", { class: "mono", text: k.username }), sort: (k) => k.username });
columns.push(
  { label: "api_keys.created", render: (k) => dateTime(k.created_at), sort: (k) => k.created_at },
  { label: "api_keys.last_used", render: (k) => (k.last_used_at ? dateTime(k.last_used_at) : t("api_keys.never_used")), sort: (k) => k.last_used_at },
  { label: "api_keys.state", render: state },
  { label: "common.actions", render: actions },
);

const list = listPage({
  endpoint: "/api/v1/auth/api-keys",
  emptyTitle: "api_keys.empty",
  emptyHint: "api_keys.empty_hint",
  emptyIcon: "🔑",
  rowAttrs: (k) => ({ dataset: { keyId: String(k.id), name: k.name, active: String(k.active) } }),
  columns,
});

// ---------------------------------------------------------------- create, then show once
const dialog = /** @type {HTMLDialogElement} */ (byId("key-dialog"));
const form = /** @type {HTMLFormElement} */ (byId("key-form"));
const shown = byId("key-shown");
const errorBox = byId("key-form-error");
const saveBtn = /** @type {HTMLButtonElement} */ (byId("key-save"));
const keyInput = /** @type {HTMLInputElement} */ (byId("key-value"));

function forgetKey() {
  keyInput.value = "";
  shown.hidden = true;
  form.hidden = false;
}

byId("new-key").addEventListener("click", () => {
  form.reset();
  forgetKey();
  errorBox.hidden = true;
  saveBtn.disabled = false;
  dialog.showModal();
});
byId("key-cancel").addEventListener("click", () => dialog.close());
byId("key-done").addEventListener("click", () => dialog.close());
// the key leaves the page with the dialog, however it is closed (Escape included)
dialog.addEventListener("close", forgetKey);

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = (formValues(form).name || "").trim();
  if (!name) {
    errorBox.hidden = false;
    errorBox.textContent = t("api_keys.name_required");
    return;
  }
  saveBtn.disabled = true;
  try {
    const made = await api("/api/v1/auth/api-keys", { method: "POST", body: { name } });
    errorBox.hidden = true;
    form.hidden = true;
    byId("key-shown-name").textContent = made.name;
    keyInput.value = made.key;
    shown.hidden = false;
    keyInput.focus();
    keyInput.select();
    list.reload();
  } catch (err) {
    errorBox.hidden = false;
    errorBox.textContent = /** @type {Error} */ (err).message;
  } finally {
    saveBtn.disabled = false;
  }
});

byId("key-copy").addEventListener("click", async () => {
  keyInput.focus();
  keyInput.select();
  try {
    await navigator.clipboard.writeText(keyInput.value);
    toast(t("api_keys.copied"));
  } catch {
    // no clipboard access (an insecure origin, a refused permission): the key is selected
    toast(t("api_keys.copy_manually"), "error");
  }
});
