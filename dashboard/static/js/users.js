// @ts-check
/* User administration (admin: everyone; company admin: its station staff): list, create,
   disable/enable (GET/POST/PATCH /api/v1/users). */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { dateTime, text } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { toast } from "./lib/ui.js";

const me = config.user || {};
/** @type {Record<string, string>} */
const companies = {};
for (const c of config.companies || []) companies[c.id] = c.name;

/**
 * @param {any} u
 * @param {HTMLButtonElement} btn
 */
async function toggle(u, btn) {
  btn.disabled = true;
  try {
    await api("/api/v1/users/" + u.id, { method: "PATCH", body: { active: !u.active } });
    toast(t(u.active ? "users.disabled" : "users.enabled", { name: u.username }));
    page.reload();
  } catch (err) {
    btn.disabled = false;
    toast(/** @type {Error} */ (err).message, "error");
  }
}

/** @param {any} u */
function actionButton(u) {
  const mayChange = u.id !== me.user_id && (me.role === "admin" || u.role === "station_operator");
  if (!mayChange) return "—";
  const btn = el("button", { class: "btn btn-sm" + (u.active ? "" : " btn-primary"), type: "button", dataset: { action: u.active ? "disable" : "enable" } },
    t(u.active ? "users.disable" : "users.enable"));
  btn.addEventListener("click", () => toggle(u, btn));
  return btn;
}

const page = listPage({
  endpoint: "/api/v1/users",
  emptyTitle: "users.empty",
  emptyHint: "users.empty_hint",
  rowAttrs: (u) => ({ dataset: { username: u.username } }),
  columns: [
    { label: "user.username", render: (u) => el("span", { class: "mono", text: u.username }), sort: (u) => u.username },
    { label: "user.display_name", render: (u) => text(u.display_name) },
    { label: "user.role", render: (u) => t("role." + u.role), sort: (u) => u.role },
    { label: "user.company", render: (u) => text(companies[u.company_id]) },
    { label: "user.districts", render: (u) => (u.districts || []).join(", ") || "—" },
    { label: "user.active", render: (u) =>
      el("span", { class: "badge " + (u.active ? "badge-ok" : "badge-scrapped"), text: t("user.active." + (u.active ? "true" : "false")) }) },
    { label: "user.last_login", render: (u) => dateTime(u.last_login_at), sort: (u) => u.last_login_at },
    { label: "common.actions", render: actionButton },
  ],
});

// ---------------------------------------------------------------- create dialog
const dialog = /** @type {HTMLDialogElement} */ (byId("user-dialog"));
const form = /** @type {HTMLFormElement} */ (byId("user-form"));
const errorBox = byId("user-form-error");
const saveBtn = /** @type {HTMLButtonElement} */ (byId("user-save"));
const roleSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("role"));

/** Is the field named *name* shown for the chosen role? @param {string} name */
function shown(name) {
  const field = /** @type {HTMLElement | null} */ (form.elements.namedItem(name));
  const box = field && /** @type {HTMLElement | null} */ (field.closest("[data-for-roles]"));
  return box !== null && !box.hidden;
}

function syncRoleFields() {
  const role = roleSelect.value;
  form.querySelectorAll("[data-for-roles]").forEach((node) => {
    const box = /** @type {HTMLElement} */ (node);
    box.hidden = !String(box.dataset.forRoles).split(" ").includes(role);
  });
  const site = /** @type {HTMLSelectElement | null} */ (form.elements.namedItem("site_id"));
  if (site) {
    for (const o of Array.from(site.options)) {
      if (!o.value) continue;
      const agency = o.dataset.kind === "inspection_agency";
      o.hidden = role === "inspector" ? !agency : agency;
    }
  }
}
roleSelect.addEventListener("change", syncRoleFields);

byId("new-user").addEventListener("click", () => {
  form.reset();
  errorBox.hidden = true;
  syncRoleFields();
  dialog.showModal();
});
byId("user-cancel").addEventListener("click", () => dialog.close());

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const v = formValues(form);
  /** @type {Record<string, unknown>} */
  const body = { username: (v.username || "").trim(), password: v.password || "", role: v.role };
  if (v.display_name) body.display_name = v.display_name;
  if (v.company_id && shown("company_id")) body.company_id = Number(v.company_id);
  if (v.site_id && shown("site_id")) body.site_id = Number(v.site_id);
  const boxes = form.querySelectorAll('input[name="districts"]:checked');
  if (boxes.length && ["regulator", "officer"].includes(v.role)) {
    body.districts = Array.from(boxes, (b) => /** @type {HTMLInputElement} */ (b).value);
  }
  saveBtn.disabled = true;
  try {
    await api("/api/v1/users", { method: "POST", body });
    dialog.close();
    toast(t("users.created", { name: body.username }));
    page.reload();
  } catch (err) {
    errorBox.hidden = false;
    errorBox.textContent = /** @type {Error} */ (err).message;
  } finally {
    saveBtn.disabled = false;
  }
});
