// @ts-check
/* The safety-inspection item catalogue (安检项维护; GET/POST /api/v1/safety-items): one
   customer kind's version — the newest or a past one — with its items by group, and for the
   admin an editor that publishes the whole list as the next version. A version never changes
   and a record keeps the version it used, so editing here never touches a past record. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { dateTime } from "./lib/format.js";
import { lang, t, tOr } from "./lib/i18n.js";
import { emptyState, errorState, loading, toast } from "./lib/ui.js";

const ENDPOINT = "/api/v1/safety-items";
const form = /** @type {HTMLFormElement} */ (byId("catalogue-form"));
const kindSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("kind"));
const versionSelect = /** @type {HTMLSelectElement} */ (form.elements.namedItem("version"));
const box = byId("catalogue");
/** @type {any} */
let newest = null;

/** @param {any} item */
function itemText(item) {
  return lang === "en" ? item.text_en || item.text_zh : item.text_zh;
}

/** @param {any} item */
function facts(item) {
  const out = [];
  if (item.photo_required_on_fail) out.push(t("safety_items.photo_required"));
  out.push(t("safety_items.days_value", { days: item.rectification_days ?? config.default_days }));
  if (!(item.answers || []).includes("na")) out.push(t("safety_items.no_na"));
  return out.join(" · ");
}

/** @param {any} cat */
function draw(cat) {
  byId("catalogue-title").textContent = t("safety_items.version_title", { kind: tOr("safety.kind." + cat.customer_kind, cat.customer_kind), version: cat.version });
  byId("catalogue-meta").textContent = t("safety_items.published", { at: dateTime(cat.published_at) }) + (cat.note ? " · " + cat.note : "");
  if (!cat.items || !cat.items.length) {
    emptyState(box, "safety_items.empty");
    return;
  }
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const i of cat.items) groups.set(i.group_code, [...(groups.get(i.group_code) || []), i]);
  clear(box).append(...[...groups].map(([code, list]) => el("section", { class: "safety-group", dataset: { testid: "catalogue-group" } },
    el("h3", { text: tOr("safety.group." + code, code) }),
    el("ol", { class: "safety-items", start: String(list[0].position) }, list.map((i) => el("li", { dataset: { testid: "catalogue-item", code: i.code } },
      el("span", { text: itemText(i) }), " ", el("small", { class: "muted", text: "(" + i.code + ") " + facts(i) })))))));
}

/** @param {number | null} version */
async function load(version) {
  loading(box);
  try {
    const cat = await api(ENDPOINT, { query: { customer_kind: kindSelect.value, version: version || undefined } });
    if (!version) {
      newest = cat;
      clear(versionSelect);
      for (let v = cat.version; v >= 1; v--) {
        versionSelect.appendChild(el("option", { value: String(v) }, v === cat.version ? t("safety_items.version_current", { version: v }) : t("safety_items.version_past", { version: v })));
      }
    }
    draw(cat);
  } catch (err) {
    errorState(box, /** @type {Error} */ (err));
  }
}

kindSelect.addEventListener("change", () => {
  history.replaceState(null, "", location.pathname + "?kind=" + encodeURIComponent(kindSelect.value));
  closeEditor();
  load(null);
});
versionSelect.addEventListener("change", () => load(Number(versionSelect.value)));

// ---------------------------------------------------------------- editor (admin)
const editor = document.getElementById("editor");
const rowsBox = document.getElementById("editor-rows");

/**
 * @param {string} name
 * @param {Record<string, unknown>} attrs
 */
function cell(name, attrs) {
  return el("td", {}, el("input", { name, "aria-label": t("safety_items." + name), ...attrs }));
}

/** @param {any} [i] */
function editorRow(i = {}) {
  const tr = el("tr", { dataset: { testid: "editor-row" } },
    cell("group", { value: i.group_code || "", required: true, pattern: "[a-z_]{1,40}", size: 10 }),
    cell("code", { value: i.code || "", required: true, pattern: "[a-z0-9_]{1,60}", size: 14 }),
    cell("text_zh", { value: i.text_zh || "", required: true, maxlength: 500 }),
    cell("text_en", { value: i.text_en || "", required: true, maxlength: 500 }),
    cell("na_allowed", { type: "checkbox", checked: !i.answers || i.answers.includes("na") }),
    cell("photo_required", { type: "checkbox", checked: !!i.photo_required_on_fail }),
    cell("days", { type: "number", min: 0, max: 365, step: 1, value: i.rectification_days ?? "", placeholder: String(config.default_days), size: 4 }),
    el("td", {}, el("button", { class: "btn btn-sm btn-ghost", type: "button", dataset: { testid: "editor-remove" }, onclick: () => tr.remove() }, t("safety_items.editor.remove"))));
  return tr;
}

function closeEditor() {
  if (editor) editor.hidden = true;
}

if (editor && rowsBox) {
  const editorForm = /** @type {HTMLFormElement} */ (byId("editor-form"));
  const errorBox = byId("editor-error");
  const publish = /** @type {HTMLButtonElement} */ (byId("editor-publish"));

  byId("edit-new").addEventListener("click", () => {
    if (!newest) return;
    clear(rowsBox).append(...newest.items.map(editorRow));
    /** @type {HTMLInputElement} */ (editorForm.elements.namedItem("note")).value = "";
    byId("editor-kind").textContent = t("safety_items.version_title", { kind: tOr("safety.kind." + newest.customer_kind, newest.customer_kind), version: newest.version + 1 });
    errorBox.hidden = true;
    editor.hidden = false;
    editor.scrollIntoView();
  });
  byId("editor-add").addEventListener("click", () => {
    const row = editorRow();
    rowsBox.appendChild(row);
    /** @type {HTMLInputElement} */ (row.querySelector("input")).focus();
  });
  byId("editor-cancel").addEventListener("click", closeEditor);

  editorForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    const rows = [...rowsBox.querySelectorAll("tr")];
    const bad = rows.flatMap((r) => [...r.querySelectorAll("input")]).find((i) => !i.checkValidity());
    if (!rows.length || bad) {
      errorBox.textContent = rows.length ? t("safety_items.editor.invalid") : t("safety_items.editor.no_items");
      errorBox.hidden = false;
      if (bad) bad.focus();
      return;
    }
    /** @param {HTMLTableRowElement} r @param {string} n */
    const input = (r, n) => /** @type {HTMLInputElement} */ (r.querySelector(`input[name="${n}"]`));
    const items = rows.map((r) => ({
      group_code: input(r, "group").value.trim(),
      code: input(r, "code").value.trim(),
      text_zh: input(r, "text_zh").value.trim(),
      text_en: input(r, "text_en").value.trim(),
      answers: input(r, "na_allowed").checked ? ["pass", "fail", "na"] : ["pass", "fail"],
      photo_required_on_fail: input(r, "photo_required").checked,
      rectification_days: input(r, "days").value === "" ? null : Number(input(r, "days").value),
    }));
    const note = /** @type {HTMLInputElement} */ (editorForm.elements.namedItem("note")).value.trim();
    publish.disabled = true;
    try {
      const out = await api(ENDPOINT, { method: "POST", body: { customer_kind: kindSelect.value, items, note: note || null } });
      toast(t("safety_items.editor.published", { version: out.version }));
      closeEditor();
      await load(null);
    } catch (err) {
      errorBox.textContent = /** @type {Error} */ (err).message;
      errorBox.hidden = false;
    } finally {
      publish.disabled = false;
    }
  });
}

load(null);
