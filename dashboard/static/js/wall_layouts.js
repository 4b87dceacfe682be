// @ts-check
/* The wall's layouts (/wall-layouts; docs/API.md "Wall layouts", server/domain/wall.py).

   - Walls: each wall the user may switch (the city's and each district's for a city-wide
     account, its own districts' for a district regulator) with the layout it shows and a
     switch. A switch goes over the page's websocket (`wall_switch`, docs/WEBSOCKET.md): the
     wall follows within a second; without a socket it falls back on the REST activate.
   - Editor (admins; regulators see it read-only): the layout's name and grid, a preview of
     the grid where each window is dragged to move it, dragged by its corner to resize it,
     or — selected with Tab — moved with the arrow keys and resized with Shift+arrows; and
     the list of windows with their numbers (x, y, w, h) and their content chosen from the
     catalogue (the map, KPI tiles, the ticker, the wall's charts, any report with its
     filters, a camera stream). The server checks everything again and names the field at
     fault, which is shown on its window. window.__wl exposes the state for tests. */
import { ApiError, api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, el } from "./lib/dom.js";
import { lang, t } from "./lib/i18n.js";
import { toast } from "./lib/ui.js";
import { LiveSocket, pageSockets } from "./lib/ws.js";

const EDITS = Boolean(config.edits);
const NEW_SIZE = { w: 4, h: 3 };
const REPORT_GROUPS = ["", "day", "week", "month", "quarter", "year"];

/** @typedef {{id: number | null, name: string, columns: number, rows: number, windows: any[], version: number}} Layout */

const state = {
  /** @type {any[]} */
  layouts: [],
  /** @type {any[]} */
  walls: [],
  /** @type {Layout | null} */
  current: null,
  selected: -1,
  /** @type {any[]} */
  reports: [],
  switched: 0,
  saved: 0,
};
/** @type {any} */ (window).__wl = state;

const live = pageSockets[0] || new LiveSocket();
live.start();

// ---------------------------------------------------------------- helpers

/** @param {string} scope */
function scopeLabel(scope) {
  if (scope === "city") return t("wall_layouts.scope_city");
  return scope.split(",").map((code) => {
    const d = (config.districts || []).find((/** @type {any} */ x) => x.code === code);
    return d ? (lang === "en" && d.name_en ? d.name_en : d.name) : code;
  }).join("、");
}

/** The walls this user may switch. */
function scopes() {
  const out = config.city_wide ? ["city"] : [String(config.mine)];
  for (const d of config.districts || []) if (!out.includes(d.code)) out.push(d.code);
  return out;
}

/** @param {any} win */
function kindLabel(win) {
  if (win.kind === "chart") return t("wall_layouts.chart." + win.chart);
  if (win.kind === "report") {
    const r = state.reports.find((x) => x.name === win.report);
    return r ? (lang === "en" ? r.title_en || r.summary : r.title || r.summary) || win.report : win.report || t("wall_layouts.kind.report");
  }
  return t("wall_layouts.kind." + win.kind);
}

/** @param {any} a @param {any} b */
const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** @param {number} v @param {number} lo @param {number} hi */
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

// ---------------------------------------------------------------- walls (switch)

const wallsEl = byId("walls");

function drawWalls() {
  const rows = scopes().map((scope) => {
    const now = state.walls.find((w) => w.scope === scope);
    const select = el("select", { "aria-label": t("wall_layouts.switch_to") + " " + scopeLabel(scope), dataset: { testid: "wall-select-" + scope } },
      ...state.layouts.map((l) => el("option", { value: String(l.id), selected: now && now.layout_id === l.id, text: l.name })));
    const btn = el("button", { class: "btn btn-sm btn-primary", type: "button", dataset: { testid: "wall-switch-" + scope }, text: t("wall_layouts.switch") });
    btn.addEventListener("click", () => switchWall(scope, Number(select.value), btn));
    return el("tr", { dataset: { scope } },
      el("td", { text: scopeLabel(scope) }),
      el("td", { dataset: { testid: "wall-current-" + scope }, text: now ? now.name : t("wall_layouts.default_shown") }),
      el("td", { class: "muted", text: now && now.switched_by ? now.switched_by + " · " + new Date(now.switched_at).toLocaleString(lang) : "" }),
      el("td", {}, el("div", { class: "btn-group" }, select, btn)));
  });
  wallsEl.replaceChildren(el("table", { class: "table" },
    el("thead", {}, el("tr", {}, ...["wall", "showing", "switched", "switch_to"].map((k) => el("th", { text: t("wall_layouts.col." + k) })))),
    el("tbody", {}, ...rows)));
}

/**
 * @param {string} scope
 * @param {number} layout
 * @param {HTMLButtonElement} btn
 */
async function switchWall(scope, layout, btn) {
  btn.disabled = true;
  try {
    try {
      await live.request({ type: "wall_switch", layout, scope });
    } catch (/** @type {any} */ err) {
      if (err && (err.code === "offline" || err.code === "timeout")) {
        await api("/api/v1/wall-layouts/" + layout + "/activate", { method: "POST", body: { scope } });
      } else {
        throw new Error(err && err.message ? err.message : String(err), { cause: err });
      }
    }
    toast(t("wall_layouts.switched", { wall: scopeLabel(scope) }));
    await loadAll();
    state.switched += 1;
  } catch (err) {
    toast(/** @type {Error} */ (err).message, "error");
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- layout list

const listEl = byId("layout-list");

function drawList() {
  listEl.replaceChildren(...state.layouts.map((l) => el("li", {},
    el("button", {
      type: "button",
      class: "wl-item" + (state.current && state.current.id === l.id ? " active" : ""),
      "aria-current": state.current && state.current.id === l.id ? "true" : null,
      dataset: { testid: "layout-item", id: String(l.id) },
      onclick: () => edit(structuredClone(l)),
    }, el("b", { text: l.name }), el("span", { class: "muted", text: l.columns + "×" + l.rows + " · " + t("wall_layouts.n_windows", { n: l.windows.length }) + (l.showing.length ? " · " + t("wall_layouts.shown_on", { walls: l.showing.map(scopeLabel).join("、") }) : "") })))));
}

async function loadAll() {
  const body = await api("/api/v1/wall-layouts", { query: { page_size: config.page_size_max || 200 } });
  state.layouts = body.items;
  state.walls = body.walls;
  drawWalls();
  drawList();
  return body;
}

// ---------------------------------------------------------------- editor

const form = /** @type {HTMLFormElement} */ (byId("layout-form"));
const nameIn = /** @type {HTMLInputElement} */ (form.elements.namedItem("name"));
const colsIn = /** @type {HTMLInputElement} */ (form.elements.namedItem("columns"));
const rowsIn = /** @type {HTMLInputElement} */ (form.elements.namedItem("rows"));
const preview = byId("preview");
const winList = byId("window-list");
const errorBox = byId("editor-error");
colsIn.max = rowsIn.max = String(config.grid_max);

/** @param {Layout} layout */
function edit(layout) {
  state.current = layout;
  state.selected = -1;
  nameIn.value = layout.name;
  colsIn.value = String(layout.columns);
  rowsIn.value = String(layout.rows);
  errorBox.hidden = true;
  drawList();
  drawEditor();
}

function drawEditor() {
  drawPreview();
  drawWindows();
}

function drawPreview() {
  const l = state.current;
  if (!l) { preview.replaceChildren(); return; }
  preview.style.setProperty("--cols", String(l.columns));
  preview.style.setProperty("--rows", String(l.rows));
  preview.style.aspectRatio = "16 / 9";
  preview.replaceChildren(...l.windows.map((win, i) => {
    const clash = l.windows.some((o, j) => j !== i && overlaps(win, o));
    const box = el("div", {
      class: "wl-win wl-kind-" + win.kind + (i === state.selected ? " selected" : "") + (clash ? " clash" : ""),
      tabindex: "0",
      role: "button",
      "aria-label": kindLabel(win) + " — x " + win.x + ", y " + win.y + ", " + win.w + "×" + win.h,
      dataset: { testid: "preview-window", index: String(i) },
    }, el("span", { class: "wl-win-title", text: win.title || kindLabel(win) }), el("span", { class: "wl-win-size", text: win.w + "×" + win.h }),
    EDITS ? el("span", { class: "wl-resize", "aria-hidden": "true", dataset: { testid: "resize-handle" } }) : null);
    box.style.left = (win.x / l.columns) * 100 + "%";
    box.style.top = (win.y / l.rows) * 100 + "%";
    box.style.width = (win.w / l.columns) * 100 + "%";
    box.style.height = (win.h / l.rows) * 100 + "%";
    box.addEventListener("focus", () => select(i, false));
    if (EDITS) {
      box.addEventListener("keydown", (ev) => keyMove(ev, i));
      box.addEventListener("pointerdown", (ev) => dragStart(ev, i, box));
    }
    return box;
  }));
}

/** @param {number} i @param {boolean} redraw */
function select(i, redraw) {
  if (state.selected === i) return;
  state.selected = i;
  preview.querySelectorAll(".wl-win").forEach((b, j) => b.classList.toggle("selected", j === i));
  winList.querySelectorAll(":scope > li").forEach((li, j) => li.classList.toggle("selected", j === i));
  if (redraw) drawPreview();
}

/**
 * Place window *i* at x, y with size w, h inside the grid, then redraw it.
 * @param {number} i
 * @param {{x?: number, y?: number, w?: number, h?: number}} to
 */
function place(i, to) {
  const l = /** @type {Layout} */ (state.current);
  const win = l.windows[i];
  const w = clamp(to.w ?? win.w, 1, l.columns);
  const h = clamp(to.h ?? win.h, 1, l.rows);
  Object.assign(win, { w, h, x: clamp(to.x ?? win.x, 0, l.columns - w), y: clamp(to.y ?? win.y, 0, l.rows - h) });
  drawPreview();
  syncNumbers(i);
  const box = /** @type {HTMLElement | null} */ (preview.querySelector('[data-index="' + i + '"]'));
  if (box && document.activeElement !== box && !dragging) box.focus();
}

/** @param {KeyboardEvent} ev @param {number} i */
function keyMove(ev, i) {
  const d = /** @type {Record<string, [number, number]>} */ ({ ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] })[ev.key];
  if (!d) return;
  ev.preventDefault();
  const win = /** @type {Layout} */ (state.current).windows[i];
  if (ev.shiftKey) place(i, { w: win.w + d[0], h: win.h + d[1] });
  else place(i, { x: win.x + d[0], y: win.y + d[1] });
}

let dragging = false;
/**
 * @param {PointerEvent} ev
 * @param {number} i
 * @param {HTMLElement} box
 */
function dragStart(ev, i, box) {
  if (ev.button !== 0) return;
  ev.preventDefault();
  box.focus();
  select(i, false);
  const l = /** @type {Layout} */ (state.current);
  const win = l.windows[i];
  const resize = /** @type {HTMLElement} */ (ev.target).classList.contains("wl-resize");
  const rect = preview.getBoundingClientRect();
  const cw = rect.width / l.columns;
  const ch = rect.height / l.rows;
  const start = { px: ev.clientX, py: ev.clientY, x: win.x, y: win.y, w: win.w, h: win.h };
  dragging = true;
  /** @param {PointerEvent} e */
  const move = (e) => {
    const dx = Math.round((e.clientX - start.px) / cw);
    const dy = Math.round((e.clientY - start.py) / ch);
    if (resize) place(i, { w: start.w + dx, h: start.h + dy });
    else place(i, { x: start.x + dx, y: start.y + dy });
  };
  const up = () => {
    dragging = false;
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
    const again = /** @type {HTMLElement | null} */ (preview.querySelector('[data-index="' + i + '"]'));
    if (again) again.focus();
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
}

/** @param {number} i */
function syncNumbers(i) {
  const li = winList.children[i];
  if (!li) return;
  const win = /** @type {Layout} */ (state.current).windows[i];
  for (const k of ["x", "y", "w", "h"]) {
    const input = /** @type {HTMLInputElement | null} */ (li.querySelector('input[name="' + k + '"]'));
    if (input) input.value = String(win[k]);
  }
}

/**
 * A labelled input bound to win[key].
 * @param {any} win
 * @param {string} key
 * @param {Record<string, unknown>} attrs
 * @param {(v: string) => any} [parse]
 */
function bound(win, key, attrs, parse = (v) => v) {
  const input = el("input", { name: key, value: win[key] === undefined || win[key] === null ? "" : String(win[key]), ...attrs });
  input.addEventListener("input", () => {
    const v = parse(input.value);
    if (v === undefined || v === "" || (typeof v === "number" && isNaN(v))) delete win[key];
    else win[key] = v;
    drawPreview();
  });
  return el("label", { class: "field" }, el("span", { text: t("wall_layouts.field." + key) }), input);
}

/**
 * A labelled select bound to obj[key].
 * @param {any} obj
 * @param {string} key
 * @param {[string, string][]} options value, label
 * @param {() => void} [after]
 */
function choice(obj, key, options, after) {
  const select = el("select", { name: key }, ...options.map(([v, label]) => el("option", { value: v, selected: String(obj[key] ?? "") === v, text: label })));
  select.addEventListener("change", () => {
    if (select.value === "") delete obj[key];
    else obj[key] = select.value;
    drawPreview();
    if (after) after();
  });
  return el("label", { class: "field" }, el("span", { text: t("wall_layouts.field." + key) }), select);
}

/** @param {any} win */
function contentFields(win) {
  if (win.kind === "chart") {
    return [choice(win, "chart", config.charts.map((/** @type {string} */ c) => [c, t("wall_layouts.chart." + c)]))];
  }
  if (win.kind === "kpis") {
    const keys = new Set(win.keys || config.kpi_keys);
    return [el("fieldset", { class: "wl-checks" }, el("legend", { text: t("wall_layouts.field.keys") }),
      ...config.kpi_keys.map((/** @type {string} */ k) => {
        const box = el("input", { type: "checkbox", checked: keys.has(k), value: k });
        box.addEventListener("change", () => {
          if (box.checked) keys.add(k); else keys.delete(k);
          win.keys = config.kpi_keys.filter((/** @type {string} */ x) => keys.has(x));
        });
        return el("label", { class: "check" }, box, " ", t("wall_layouts.kpi." + k));
      }))];
  }
  if (win.kind === "report") {
    win.filters = win.filters || {};
    const districts = /** @type {[string, string][]} */ ([["", t("wall_layouts.any")], ...(config.districts || []).map((/** @type {any} */ d) => [d.code, lang === "en" && d.name_en ? d.name_en : d.name])]);
    return [
      choice(win, "report", state.reports.map((r) => [r.name, (lang === "en" ? r.title_en || r.summary : r.title || r.summary) || r.name])),
      choice(win, "view", [["chart", t("wall_layouts.view.chart")], ["table", t("wall_layouts.view.table")]]),
      bound(win, "days", { type: "number", min: "1" }, (v) => (v === "" ? undefined : Number(v))),
      choice(win.filters, "group", REPORT_GROUPS.map((g) => [g, g ? t("wall_layouts.group." + g) : t("wall_layouts.any")])),
      choice(win.filters, "district", districts),
    ];
  }
  if (win.kind === "stream") {
    return [
      bound(win, "url", { type: "url", maxlength: "1000", placeholder: (config.stream_origins[0] || "https://camera.example") + "/live/index.m3u8" }),
      choice(win, "format", [["hls", "HLS (.m3u8)"], ["mjpeg", "MJPEG"]]),
      el("p", { class: "muted", text: config.stream_origins.length ? t("wall_layouts.stream_origins", { origins: config.stream_origins.join(", ") }) : t("wall_layouts.no_stream_origins") }),
    ];
  }
  return [];
}

function drawWindows() {
  const l = state.current;
  if (!l) { winList.replaceChildren(); return; }
  winList.replaceChildren(...l.windows.map((win, i) => {
    const num = (/** @type {string} */ k) => bound(win, k, { type: "number", min: k === "w" || k === "h" ? "1" : "0", required: true, dataset: { testid: "win-" + k } }, (v) => Number(v));
    const remove = EDITS ? el("button", { type: "button", class: "btn btn-sm btn-ghost", dataset: { testid: "window-remove" }, text: t("wall_layouts.remove") }) : null;
    if (remove) remove.addEventListener("click", () => { l.windows.splice(i, 1); state.selected = -1; drawEditor(); });
    const li = el("li", { class: "wl-window" + (i === state.selected ? " selected" : ""), dataset: { testid: "window-row", index: String(i) } },
      el("div", { class: "wl-window-head" }, el("b", { text: (i + 1) + ". " + kindLabel(win) }), remove),
      el("div", { class: "wl-window-fields" }, bound(win, "title", { maxlength: "60", placeholder: kindLabel(win) }), num("x"), num("y"), num("w"), num("h"), ...contentFields(win)),
      el("p", { class: "field-error", dataset: { errorFor: String(i) } }));
    li.addEventListener("focusin", () => select(i, false));
    return li;
  }));
}

/** The first free place for a new window, or the top left corner. */
function freeSpot() {
  const l = /** @type {Layout} */ (state.current);
  const w = Math.min(NEW_SIZE.w, l.columns);
  const h = Math.min(NEW_SIZE.h, l.rows);
  for (let y = 0; y + h <= l.rows; y++) {
    for (let x = 0; x + w <= l.columns; x++) {
      const box = { x, y, w, h };
      if (!l.windows.some((o) => overlaps(box, o))) return box;
    }
  }
  return { x: 0, y: 0, w: 1, h: 1 };
}

/** @param {string} kind */
function newWindow(kind) {
  /** @type {any} */
  const win = { kind, ...freeSpot() };
  if (kind === "chart") win.chart = config.charts[0];
  if (kind === "report") { win.report = state.reports.length ? state.reports[0].name : ""; win.view = "chart"; win.filters = {}; }
  if (kind === "stream") { win.url = ""; win.format = "hls"; }
  return win;
}

/** The layout as the API takes it (empty report filters left out). */
function payload() {
  const l = /** @type {Layout} */ (state.current);
  const windows = l.windows.map((w) => {
    const out = { ...w };
    if (out.kind === "report" && out.filters && !Object.keys(out.filters).length) delete out.filters;
    return out;
  });
  return { name: nameIn.value.trim(), columns: Number(colsIn.value), rows: Number(rowsIn.value), windows };
}

/** @param {unknown} err */
function showError(err) {
  errorBox.hidden = false;
  errorBox.textContent = err instanceof Error ? err.message : String(err);
  const field = err instanceof ApiError && err.details ? String(/** @type {any} */ (err.details).field || "") : "";
  const m = /^windows\[(\d+)\]/.exec(field);
  if (m) {
    const slot = winList.querySelector('[data-error-for="' + m[1] + '"]');
    if (slot) slot.textContent = errorBox.textContent;
    select(Number(m[1]), true);
  }
}

for (const input of [nameIn, colsIn, rowsIn]) {
  input.addEventListener("input", () => {
    const l = state.current;
    if (!l) return;
    l.name = nameIn.value;
    l.columns = clamp(Number(colsIn.value) || 1, 1, config.grid_max);
    l.rows = clamp(Number(rowsIn.value) || 1, 1, config.grid_max);
    drawPreview();
  });
}

if (EDITS) {
  const addKind = /** @type {HTMLSelectElement} */ (byId("add-kind"));
  addKind.replaceChildren(...config.kinds.map((/** @type {string} */ k) => el("option", { value: k, text: t("wall_layouts.kind." + k) })));
  byId("window-add").addEventListener("click", () => {
    const l = state.current;
    if (!l) return;
    l.windows.push(newWindow(addKind.value));
    state.selected = l.windows.length - 1;
    drawEditor();
    const box = /** @type {HTMLElement | null} */ (preview.querySelector('[data-index="' + state.selected + '"]'));
    if (box) box.focus();
  });
  byId("layout-new").addEventListener("click", () => edit({ id: null, name: "", columns: config.default_layout.columns, rows: config.default_layout.rows, windows: [], version: 0 }));
  byId("layout-copy").addEventListener("click", () => {
    if (!state.current) return;
    edit({ ...structuredClone(state.current), id: null, version: 0, name: state.current.name + " " + t("wall_layouts.copy_suffix") });
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const l = state.current;
    if (!l) return;
    errorBox.hidden = true;
    winList.querySelectorAll("[data-error-for]").forEach((p) => { p.textContent = ""; });
    const save = /** @type {HTMLButtonElement} */ (byId("layout-save"));
    save.disabled = true;
    try {
      const body = payload();
      const saved = l.id === null
        ? await api("/api/v1/wall-layouts", { method: "POST", body })
        : await api("/api/v1/wall-layouts/" + l.id, { method: "PATCH", body: { ...body, version: l.version } });
      toast(t("wall_layouts.saved", { name: saved.name }));
      await loadAll();
      edit(structuredClone(saved));
      state.saved += 1;
    } catch (err) {
      showError(err);
    } finally {
      save.disabled = false;
    }
  });
  byId("layout-delete").addEventListener("click", async () => {
    const l = state.current;
    if (!l || l.id === null) return;
    if (!window.confirm(t("wall_layouts.delete_question", { name: l.name }))) return;
    try {
      await api("/api/v1/wall-layouts/" + l.id, { method: "DELETE" });
      toast(t("wall_layouts.deleted", { name: l.name }));
      state.current = null;
      await loadAll();
      if (state.layouts.length) edit(structuredClone(state.layouts[0]));
    } catch (err) {
      showError(err);
    }
  });
}

// ---------------------------------------------------------------- start
Promise.all([
  loadAll(),
  api("/api/v1/reports").then((b) => { state.reports = b.items || []; }).catch(() => {}),
]).then(() => {
  if (state.layouts.length) edit(structuredClone(state.layouts[0]));
  document.body.dataset.ready = "1";
}).catch((err) => showError(err));
