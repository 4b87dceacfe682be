// @ts-check
/* The audit log (GET /api/v1/audit, admins and regulators): filters, the rows newest first,
   export links that follow the filters, and a row's details as a diff.

   Writers record their details in a few shapes (server/api/*: audit(...)), read here as
   changes of a field from a value to a value:
   - {before: {...}, after: {...}}            field by field;
   - {from, to, ...}                          a status moved (inspections, licences);
   - {x_before, x, ...}                       one field moved (an entrustment's end);
   - {cylinders: {tag: {field: [old, new]}}}  an import changed archive fields;
   - {changed: {...}} or plain fields         the new values only (most updates): the old ones
                                              were not recorded, and the view says so. */
import { api, qs } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el, formFromUrl, formValues } from "./lib/dom.js";
import { dateTime, dayInstant, number } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { pager, table } from "./lib/table.js";
import { emptyState, errorState, loading } from "./lib/ui.js";

const FILTERS = ["user", "role", "action", "entity", "entity_id", "from", "to", "q"];
const SUMMARY_ITEMS = 3;
const SUMMARY_CHARS = 40;

/**
 * @typedef {{field: string, before?: unknown, after?: unknown, hasBefore: boolean}} Change
 */

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The details of a row as changes (see the header comment).
 * @param {unknown} details
 * @returns {Change[]}
 */
export function changes(details) {
  /** @type {Change[]} */
  const out = [];
  if (!isObject(details)) return details === undefined || details === null ? out : [{ field: "value", after: details, hasBefore: false }];
  const rest = { ...details };
  if (isObject(rest.before) || isObject(rest.after)) {
    const before = isObject(rest.before) ? rest.before : {};
    const after = isObject(rest.after) ? rest.after : {};
    for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
      out.push({ field, before: before[field], after: after[field], hasBefore: field in before });
    }
    delete rest.before;
    delete rest.after;
  }
  if ("from" in rest && "to" in rest) {
    out.push({ field: t("audit.diff.status"), before: rest.from, after: rest.to, hasBefore: true });
    delete rest.from;
    delete rest.to;
  }
  if (isObject(rest.cylinders)) {
    for (const [tag, fields] of Object.entries(rest.cylinders)) {
      if (!isObject(fields)) continue;
      for (const [field, pair] of Object.entries(fields)) {
        if (Array.isArray(pair) && pair.length === 2) out.push({ field: tag + " · " + field, before: pair[0], after: pair[1], hasBefore: true });
      }
    }
    delete rest.cylinders;
  }
  for (const key of Object.keys(rest)) {
    const base = key.endsWith("_before") ? key.slice(0, -"_before".length) : null;
    if (base && base in rest) {
      out.push({ field: base, before: rest[key], after: rest[base], hasBefore: true });
      delete rest[key];
      delete rest[base];
    }
  }
  const changed = isObject(rest.changed) ? rest.changed : null;
  delete rest.changed;
  for (const [field, value] of Object.entries({ ...(changed || {}), ...rest })) {
    out.push({ field, after: value, hasBefore: false });
  }
  return out;
}

/**
 * A recorded value as text.
 * @param {unknown} v
 */
function shown(v) {
  if (v === undefined) return "—";
  if (v === null || v === "") return t("audit.empty_value");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** @param {string} s */
function cut(s) {
  return s.length > SUMMARY_CHARS ? s.slice(0, SUMMARY_CHARS - 1) + "…" : s;
}

/** @param {any} row */
function summary(row) {
  const list = changes(row.details);
  const parts = list.slice(0, SUMMARY_ITEMS).map((c) =>
    c.field + ": " + (c.hasBefore ? cut(shown(c.before)) + " → " : "") + cut(shown(c.after)));
  if (list.length > SUMMARY_ITEMS) parts.push(t("audit.more", { n: list.length - SUMMARY_ITEMS }));
  return parts.length ? el("span", { class: "audit-summary", text: parts.join(" · ") }) : "—";
}

/** @param {string} action */
function actionLabel(action) {
  return tOr("audit.action." + action, action);
}

/** @param {any} row */
function target(row) {
  const kind = tOr("audit.entity." + row.entity, row.entity);
  const name = row.target_label || (row.entity_id ? "#" + row.entity_id : "");
  if (row.entity === "cylinder" && /^\d+$/.test(row.entity_id || "")) {
    return el("span", {}, kind + " ", el("a", { href: "/cylinders/" + row.entity_id, class: "mono" }, name));
  }
  return el("span", {}, kind + (name ? " " : ""), name ? el("span", { class: "mono", text: name }) : null);
}

/** @param {any} row */
function who(row) {
  if (!row.username) return el("span", { class: "muted", text: t("audit.nobody") });
  return el("span", {}, el("span", { class: "mono", text: row.username }),
    row.role ? el("span", { class: "muted", text: " · " + tOr("role." + row.role, row.role) }) : null);
}

// ---------------------------------------------------------------- detail view
const dialog = /** @type {HTMLDialogElement} */ (byId("entry-dialog"));

/** @param {Change[]} list */
function diffTable(list) {
  const withBefore = list.some((c) => c.hasBefore);
  const head = withBefore ? ["audit.diff.field", "audit.diff.before", "audit.diff.after"] : ["audit.diff.field", "audit.diff.recorded"];
  const rows = list.map((c) => {
    const differs = c.hasBefore && shown(c.before) !== shown(c.after);
    const cells = [el("th", { scope: "row", class: "mono", text: c.field })];
    if (withBefore) {
      cells.push(c.hasBefore
        ? el("td", { class: differs ? "diff-old" : null, dataset: { testid: "diff-before" }, text: shown(c.before) })
        : el("td", { class: "muted", title: t("audit.diff.not_recorded"), text: "—" }));
    }
    cells.push(el("td", { class: differs ? "diff-new" : null, dataset: { testid: "diff-after" }, text: shown(c.after) }));
    return el("tr", { dataset: { field: c.field } }, cells);
  });
  return el("div", {},
    withBefore ? null : el("p", { class: "muted", dataset: { testid: "diff-new-only" }, text: t("audit.diff.new_only") }),
    el("div", { class: "table-wrap" }, el("table", { class: "data audit-diff" },
      el("thead", {}, el("tr", {}, head.map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, rows))));
}

/** @param {any} row */
function openEntry(row) {
  byId("entry-title").textContent = actionLabel(row.action);
  /** @type {[string, Node | string][]} */
  const facts = [
    ["audit.at", dateTime(row.at)],
    ["audit.who", who(row)],
    ["audit.action", el("span", { class: "mono", text: row.action })],
    ["audit.target", target(row)],
  ];
  if (row.remote) facts.push(["audit.remote", el("span", { class: "mono", text: row.remote })]);
  facts.push(["audit.id", String(row.id)]);
  clear(byId("entry-facts")).append(...facts.map(([k, v]) => el("div", {}, el("dt", { text: t(k) }), el("dd", {}, v))));
  const list = changes(row.details);
  const box = clear(byId("entry-diff"));
  box.appendChild(list.length ? diffTable(list) : el("p", { class: "muted", text: t("audit.diff.none") }));
  byId("entry-raw").textContent = JSON.stringify(row.details, null, 2);
  dialog.showModal();
}

/** @param {any} row */
function detailButton(row) {
  return el("button", { class: "btn btn-sm", type: "button", dataset: { testid: "entry-open" }, onclick: () => openEntry(row) }, t("audit.details"));
}

/**
 * The API query of the form's values (days as the instants they start and end); the export
 * links follow the same filters.
 * @param {Record<string, any>} v
 */
function toQuery(v) {
  const query = { ...v, from: dayInstant(v.from), to: dayInstant(v.to, true) };
  /** @type {Record<string, unknown>} */
  const picked = {};
  for (const k of FILTERS) if (query[k]) picked[k] = query[k];
  document.querySelectorAll("a[data-export]").forEach((a) => {
    a.setAttribute("href", "/api/v1/audit" + qs({ format: /** @type {HTMLElement} */ (a).dataset.export, ...picked }));
  });
  return query;
}

/** @type {import("./lib/table.js").Column[]} */
const COLUMNS = [
  { label: "audit.at", render: (r) => dateTime(r.at), sort: (r) => r.id },
  { label: "audit.who", render: who, sort: (r) => r.username },
  { label: "audit.action", render: (r) => el("span", { title: r.action, text: actionLabel(r.action) }), sort: (r) => r.action },
  { label: "audit.target", render: target, sort: (r) => r.entity },
  { label: "audit.changes", render: summary },
  { label: "common.actions", render: detailButton },
];

// ---------------------------------------------------------------- the list
/* lib/table.js listPage, but for one difference: a district regulator's total is counted only
   a little past the page shown (server/api/audit_log.py LOOKAHEAD_ROWS, total_capped), and
   the pager must then say "at least N", not "N in total". */
const form = /** @type {HTMLFormElement} */ (byId("search-form"));
const results = byId("results");
const pagerBox = byId("pager");
let current = 1;

/** @param {number} page */
async function load(page) {
  current = page || 1;
  const values = formValues(form);
  const query = { ...toQuery(values), page: current, page_size: config.page_size };
  history.replaceState(null, "", location.pathname + qs(current > 1 ? { page: current, ...values } : values));
  loading(results);
  clear(pagerBox);
  try {
    const env = await api("/api/v1/audit", { query });
    const items = env.items || [];
    if (!items.length) {
      const filtered = Object.keys(values).length > 0;
      emptyState(results, "audit.empty", filtered ? "common.empty_hint" : "audit.empty_hint");
    } else {
      clear(results).appendChild(table(COLUMNS, items, (r) => ({ dataset: { entryId: String(r.id), action: r.action } })));
    }
    if (items.length || current > 1) {
      pager(pagerBox, env, load);
      if (env.total_capped) {
        const summaryNode = pagerBox.querySelector("[data-testid=total]");
        if (summaryNode) summaryNode.textContent = t("audit.total_capped", { total: number(env.total, 0), page: env.page });
      }
    }
  } catch (err) {
    errorState(results, /** @type {Error} */ (err));
  }
}

const params = formFromUrl(form);
form.addEventListener("submit", (ev) => { ev.preventDefault(); load(1); });
form.addEventListener("reset", () => setTimeout(() => load(1), 0));
load(Number(params.get("page")) || 1);
