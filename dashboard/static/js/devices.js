// @ts-check
/* Devices (GET/POST/PATCH /api/v1/devices): guns, handhelds, vehicles and valves per site and
   company, last heard and online, active or not. The admin and a company admin register a
   device (its MQTT password is in the answer once: shown here once, then dropped from the
   page), change it, deactivate it (its broker client disabled and its connection closed;
   ingest refuses its messages and fill requests) or activate it again. Each answer says what
   became of the change on the broker ("broker", server/api/devices.py) and the page says it. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el, formValues } from "./lib/dom.js";
import { dateTime, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { badge, toast } from "./lib/ui.js";

/** @type {Record<string, string>} */
const companies = {};
for (const c of config.companies || []) companies[c.id] = c.name;

/** Opens the device form (set below where it exists: the roles that edit). */
let openForm = /** @type {(d: any) => void} */ (() => {});
/** Asks before deactivating. */
let askDeactivate = /** @type {(d: any) => void} */ (() => {});

/**
 * @param {any} d
 * @param {boolean} active
 * @param {HTMLButtonElement | null} btn
 */
async function setActive(d, active, btn) {
  if (btn) btn.disabled = true;
  try {
    const out = await api("/api/v1/devices/" + d.id, { method: "PATCH", body: { active } });
    const key = (active ? "devices.broker.on." : "devices.broker.off.") + (out.broker || "unmanaged");
    toast(t(active ? "devices.activated" : "devices.deactivated", { id: d.device_id }) + " " + t(key), out.broker === "pending" ? "error" : undefined);
    page.reload();
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  } finally {
    if (btn) btn.disabled = false;
  }
}

/** @param {any} d */
function onlineCell(d) {
  const state = d.online === true ? "online" : d.online === false ? "offline" : "unknown";
  const cls = { online: "ok", offline: "overdue", unknown: "neutral" }[state];
  const b = badge(cls, t("devices.state." + state));
  b.dataset.online = state;
  return el("div", { class: "cell-stack" }, b, el("span", { class: "muted", text: t("devices.last_seen") + " " + dateTime(d.last_seen_at) }));
}

/** @param {any} d */
function activeCell(d) {
  const b = badge(d.active ? "ok" : "scrapped", t("devices.active." + (d.active ? "true" : "false")));
  b.dataset.active = String(d.active);
  return b;
}

/** @param {any} d */
function actions(d) {
  if (!config.can_edit) return "—";
  const edit = el("button", { class: "btn btn-sm", type: "button", dataset: { action: "edit" }, onclick: () => openForm(d) }, t("devices.edit"));
  /** @type {HTMLButtonElement} */
  let toggle;
  if (d.active) {
    toggle = el("button", { class: "btn btn-sm btn-danger", type: "button", dataset: { action: "deactivate" }, onclick: () => askDeactivate(d) }, t("devices.deactivate"));
  } else {
    toggle = el("button", { class: "btn btn-sm btn-primary", type: "button", dataset: { action: "activate" } }, t("devices.activate"));
    toggle.addEventListener("click", () => setActive(d, true, toggle));
  }
  return el("div", { class: "btn-group" }, edit, toggle);
}

const page = listPage({
  endpoint: "/api/v1/devices",
  emptyTitle: "devices.empty",
  emptyHint: config.can_edit ? "devices.empty_hint_edit" : "devices.empty_hint",
  rowAttrs: (d) => ({ dataset: { device: d.device_id, active: String(d.active) } }),
  columns: [
    { label: "devices.device_id", render: (d) => el("span", { class: "mono", text: d.device_id }), sort: (d) => d.device_id },
    { label: "devices.name", render: (d) => text(d.name), sort: (d) => d.name },
    { label: "devices.kind", render: (d) => tOr("devices.kind." + d.kind, d.kind), sort: (d) => d.kind },
    { label: "devices.site", render: (d) => (d.site_code ? el("div", { class: "cell-stack" }, text(d.site_name), el("span", { class: "mono muted", text: d.site_code })) : "—"), sort: (d) => d.site_code },
    { label: "devices.company", render: (d) => text(d.company_name || companies[d.company_id]), sort: (d) => d.company_name },
    { label: "devices.plate_no", render: (d) => text(d.plate_no) },
    { label: "devices.online", render: onlineCell, sort: (d) => d.last_seen_at },
    { label: "devices.active", render: activeCell, sort: (d) => (d.active ? 1 : 0) },
    { label: "common.actions", render: actions },
  ],
});

// ---------------------------------------------------------------- register / change
const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("device-dialog"));
if (dialog) {
  const form = /** @type {HTMLFormElement} */ (byId("device-form"));
  const errorBox = byId("device-form-error");
  const saveBtn = /** @type {HTMLButtonElement} */ (byId("device-save"));
  const kindSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("kind"));
  const FIELDS = ["name", "site_id", "company_id", "plate_no"];
  /** @type {any} */
  let editing = null;

  const syncKind = () => {
    const kind = editing ? editing.kind : kindSelect.value;
    form.querySelectorAll("[data-for-kind]").forEach((node) => {
      const box = /** @type {HTMLElement} */ (node);
      box.hidden = box.dataset.forKind !== kind;
    });
    const site = /** @type {HTMLSelectElement} */ (form.elements.namedItem("site_id"));
    site.required = kind === "gun"; // a gun belongs to a station (server/api/devices.py)
    for (const o of Array.from(site.options)) {
      if (o.value) o.hidden = kind === "gun" && o.dataset.kind !== "filling_station";
    }
  };
  kindSelect.addEventListener("change", syncKind);

  openForm = (d) => {
    editing = d;
    form.reset();
    errorBox.hidden = true;
    form.querySelectorAll("[data-new-only]").forEach((node) => {
      const box = /** @type {HTMLElement} */ (node);
      box.hidden = Boolean(d);
      box.querySelectorAll("select, input").forEach((f) => { /** @type {HTMLInputElement} */ (f).disabled = Boolean(d); });
    });
    for (const name of FIELDS) {
      const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name));
      if (field && d && d[name] !== null && d[name] !== undefined) field.value = String(d[name]);
    }
    syncKind();
    byId("device-dialog-title").textContent = d ? t("devices.edit_title", { id: d.device_id }) : t("devices.create");
    dialog.showModal();
  };
  byId("new-device").addEventListener("click", () => openForm(null));
  byId("device-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const v = formValues(form);
    /** @type {Record<string, unknown>} */
    const all = {
      name: v.name ? v.name.trim() : null,
      site_id: v.site_id ? Number(v.site_id) : null,
      plate_no: v.plate_no && (editing ? editing.kind : kindSelect.value) === "vehicle" ? v.plate_no.trim() : null,
    };
    if (form.elements.namedItem("company_id")) all.company_id = v.company_id ? Number(v.company_id) : null;
    /** @type {Record<string, unknown>} */
    const body = {};
    if (editing) {
      for (const [k, value] of Object.entries(all)) {
        const before = editing[k] === undefined ? null : editing[k];
        if (String(before) !== String(value)) body[k] = value;
      }
      if (!Object.keys(body).length) {
        dialog.close();
        return;
      }
    } else {
      body.device_id = (v.device_id || "").trim();
      body.kind = v.kind;
      for (const [k, value] of Object.entries(all)) if (value !== null) body[k] = value;
    }
    saveBtn.disabled = true;
    try {
      if (editing) {
        await api("/api/v1/devices/" + editing.id, { method: "PATCH", body });
        dialog.close();
        toast(t("devices.saved", { id: editing.device_id }));
      } else {
        const out = await api("/api/v1/devices", { method: "POST", body });
        dialog.close();
        showSecret(out);
      }
      page.reload();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = /** @type {Error} */ (err).message;
    } finally {
      saveBtn.disabled = false;
    }
  });

  // ---------------------------------------------------------------- the password, once
  const secretDialog = /** @type {HTMLDialogElement} */ (byId("secret-dialog"));
  const secretBox = byId("secret-box");
  const secretPassword = byId("secret-password");
  const copyBtn = byId("secret-copy");
  /** @param {any} out the answer of POST /api/v1/devices */
  const showSecret = (out) => {
    const has = typeof out.mqtt_password === "string" && out.mqtt_password !== "";
    const note = byId("secret-broker");
    note.className = "alert-box " + (out.broker === "pending" ? "alert-warn" : "alert-info");
    note.textContent = t("devices.created", { id: out.device_id }) + " " + t("devices.broker.new." + (out.broker || "unmanaged"));
    secretBox.hidden = !has;
    byId("secret-once").hidden = !has;
    copyBtn.hidden = !has || !navigator.clipboard;
    byId("secret-user").textContent = has ? out.device_id : "";
    secretPassword.textContent = has ? out.mqtt_password : "";
    secretDialog.showModal();
  };
  const forget = () => {
    // the password leaves the page with the dialog: nothing keeps it
    secretPassword.textContent = "";
    byId("secret-user").textContent = "";
  };
  secretDialog.addEventListener("close", forget);
  byId("secret-done").addEventListener("click", () => secretDialog.close());
  copyBtn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secretPassword.textContent || "");
      toast(t("devices.copied"));
    } catch (err) {
      toast(/** @type {Error} */ (err).message, "error");
    }
  });

  // ---------------------------------------------------------------- deactivating
  const offDialog = /** @type {HTMLDialogElement} */ (byId("deactivate-dialog"));
  const offForm = /** @type {HTMLFormElement} */ (byId("deactivate-form"));
  const offBtn = /** @type {HTMLButtonElement} */ (byId("deactivate-confirm"));
  /** @type {any} */
  let target = null;
  askDeactivate = (d) => {
    target = d;
    byId("deactivate-who").textContent = d.device_id + (d.name ? " · " + d.name : "");
    offDialog.showModal();
  };
  byId("deactivate-cancel").addEventListener("click", () => offDialog.close());
  offForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!target) return;
    offBtn.disabled = true;
    try {
      await setActive(target, false, null);
      offDialog.close();
    } finally {
      offBtn.disabled = false;
    }
  });
}
