// @ts-check
/* One safety-inspection record (GET /api/v1/safety-inspections/{id}): who, when, whom; the
   items grouped failed / passed / not applicable with their notes and photos; the customer's
   signature; the seal's check said plainly; the rectifications with deadlines and states, each
   open one re-checked with a photo by the roles the API allows
   (POST /api/v1/rectifications/{id}/recheck); the record it corrects and those correcting it. */
import { ApiError, api, csrfToken } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { lang, t, tOr } from "./lib/i18n.js";
import { badge, errorState, toast } from "./lib/ui.js";

const RID = Number(config.record_id);
const GROUP_ORDER = ["fail", "pass", "na"];
const root = byId("record-root");

/** @param {{text_zh: string, text_en: string}} item */
export function itemText(item) {
  return lang === "en" ? item.text_en || item.text_zh : item.text_zh;
}

/**
 * @param {string} label a string key
 * @param {Node | string | null | undefined} value
 * @param {string} [testid]
 */
function field(label, value, testid) {
  return el("div", { dataset: testid ? { testid } : {} }, el("dt", { text: t(label) }), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value));
}

/** @param {any} r */
function head(r) {
  byId("record-sub").textContent = t("safety.record.sub", { customer: r.customer_name, at: dateTime(r.inspected_at) });
  const seal = r.seal || {};
  const sealText = seal.valid ? t("safety.seal.valid") : t("safety.seal.invalid");
  return el("section", { class: "card" },
    el("dl", { class: "dl-grid" },
      field("safety.col.result", badge(r.result === "pass" ? "ok" : "overdue", t("safety.result." + r.result)), "record-result"),
      field("safety.col.inspected_at", dateTime(r.inspected_at)),
      field("safety.col.received", dateTime(r.received_at)),
      field("safety.col.customer", (r.customer_name || "—") + " · " + text(r.customer_account_no)),
      field("safety.address", r.customer_address),
      field("safety.col.kind", tOr("safety.kind." + r.customer_kind, r.customer_kind) + " · " + t("safety.catalogue_version", { version: r.catalogue_version }), "record-version"),
      field("safety.col.company", r.company_name),
      field("safety.col.district", r.district_code),
      field("safety.col.inspector", (r.inspector_name || "—") + " · " + tOr("role." + r.inspector_role, r.inspector_role)),
      field("safety.position", r.lat !== null && r.lat !== undefined ? r.lat + ", " + r.lon : null),
      field("safety.seal", el("span", { class: seal.valid ? "safety-seal-ok" : "safety-seal-bad", dataset: { testid: "seal", valid: String(!!seal.valid) }, text: sealText }), "seal-field"),
      field("safety.col.corrects", r.corrects ? el("a", { href: "/safety-inspections/" + r.corrects, dataset: { testid: "corrects-link" } }, "#" + r.corrects) : null),
      field("safety.corrected_by", r.corrected_by && r.corrected_by.length
        ? el("span", {}, r.corrected_by.map((/** @type {number} */ id, /** @type {number} */ i) => [i ? ", " : "", el("a", { href: "/safety-inspections/" + id, dataset: { testid: "corrected-by-link" } }, "#" + id)]))
        : null),
    ),
    seal.valid ? null : el("p", { class: "alert-box alert-error", role: "alert", text: t("safety.seal.invalid_hint") }),
    el("p", { class: "muted safety-hash", text: t("safety.seal.hash") + " " + text(seal.record_hash) }),
  );
}

/** @param {any} ph */
function photo(ph) {
  return el("a", { href: ph.url, target: "_blank", rel: "noopener" },
    el("img", { class: "safety-photo", src: ph.url, alt: t("safety.photo"), loading: "lazy", dataset: { testid: "item-photo" } }));
}

/** @param {any} r */
function items(r) {
  /** @type {Record<number, any[]>} */
  const photos = {};
  for (const ph of r.photos || []) (photos[ph.item_id] = photos[ph.item_id] || []).push(ph);
  const sections = GROUP_ORDER.map((answer) => {
    const list = (r.items || []).filter((/** @type {any} */ i) => i.answer === answer);
    if (!list.length) return null;
    return el("section", { class: "safety-group safety-group-" + answer, dataset: { testid: "group-" + answer } },
      el("h3", {}, t("safety.answer." + answer) + " (" + list.length + ")"),
      el("ul", { class: "safety-items" }, list.map((/** @type {any} */ i) => el("li", { dataset: { testid: "item", code: i.code } },
        el("span", { class: "muted", text: tOr("safety.group." + i.group_code, i.group_code) + " · " }),
        el("span", { text: itemText(i) }),
        i.note ? el("div", { class: "muted", text: t("safety.note") + ": " + i.note }) : null,
        (photos[i.item_id] || []).length ? el("div", { class: "safety-photos" }, photos[i.item_id].map(photo)) : null))));
  });
  return el("section", { class: "card" }, el("div", { class: "card-title" }, el("h2", { text: t("safety.items") })), sections,
    r.notes ? el("p", { dataset: { testid: "record-notes" } }, el("strong", { text: t("safety.notes") + ": " }), r.notes) : null);
}

/** @param {any} r */
function signature(r) {
  return el("section", { class: "card" }, el("div", { class: "card-title" }, el("h2", { text: t("safety.signature") })),
    r.signature && r.signature.url
      ? el("img", { class: "safety-signature", src: r.signature.url, alt: t("safety.signature"), dataset: { testid: "signature" } })
      : el("p", { class: "muted", text: "—" }));
}

/** @param {any} x */
function stateBadge(x) {
  if (x.state === "closed") return badge("resolved", t("safety.rect.closed"));
  return x.overdue ? badge("overdue", t("safety.rect.overdue")) : badge("open", t("safety.rect.open"));
}

/** @param {any} r */
function rectifications(r) {
  const rows = r.rectifications || [];
  const body = rows.length
    ? el("div", { class: "table-wrap" }, el("table", { class: "data" },
      el("thead", {}, el("tr", {}, ["safety.rect.item", "safety.rect.deadline", "safety.rect.state", "safety.rect.closed_at", "safety.rect.recheck", ""].map((k) => el("th", { scope: "col", text: k ? t(k) : "" })))),
      el("tbody", {}, rows.map((/** @type {any} */ x) => el("tr", { dataset: { testid: "rect-row", id: String(x.id), state: x.state } },
        el("td", { text: itemText(x) }),
        el("td", { text: date(x.deadline) }),
        el("td", {}, stateBadge(x)),
        el("td", { text: x.closed_at ? dateTime(x.closed_at) : "—" }),
        el("td", {}, x.recheck_note || null, x.recheck_photo_url ? photo({ url: x.recheck_photo_url }) : null),
        el("td", {}, x.state === "open" && config.may_recheck
          ? el("button", { class: "btn btn-sm", type: "button", dataset: { testid: "recheck" }, onclick: () => openRecheck(x) }, t("safety.recheck.open"))
          : null))))))
    : el("p", { class: "muted", dataset: { testid: "no-rectifications" }, text: t("safety.rect.none") });
  return el("section", { class: "card" }, el("div", { class: "card-title" }, el("h2", { text: t("safety.rect.title") })), body);
}

async function load() {
  try {
    const r = await api("/api/v1/safety-inspections/" + RID);
    clear(root).append(head(r), items(r), el("div", { class: "grid-2" }, signature(r), rectifications(r)));
    document.body.dataset.ready = "1";
  } catch (err) {
    errorState(root, /** @type {Error} */ (err));
  }
}

// ---------------------------------------------------------------- re-check
const dialog = /** @type {HTMLDialogElement} */ (byId("recheck-dialog"));
const form = /** @type {HTMLFormElement} */ (byId("recheck-form"));
const errorBox = byId("recheck-error");
const save = /** @type {HTMLButtonElement} */ (byId("recheck-save"));
/** @type {any} */
let current = null;

/** @param {any} x */
function openRecheck(x) {
  current = x;
  form.reset();
  errorBox.hidden = true;
  byId("recheck-item").textContent = itemText(x) + " · " + t("safety.rect.deadline") + " " + date(x.deadline);
  dialog.showModal();
}

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

byId("recheck-cancel").addEventListener("click", () => dialog.close());
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = /** @type {HTMLInputElement} */ (form.elements.namedItem("photo"));
  if (!file.files || !file.files.length) {
    errorBox.textContent = t("safety.recheck.photo_required");
    errorBox.hidden = false;
    return;
  }
  const data = new FormData();
  data.append("photo", file.files[0]);
  const note = /** @type {HTMLTextAreaElement} */ (form.elements.namedItem("note")).value.trim();
  if (note) data.append("note", note);
  save.disabled = true;
  try {
    await postForm("/api/v1/rectifications/" + current.id + "/recheck", data);
    dialog.close();
    toast(t("safety.recheck.done"));
    await load();
  } catch (err) {
    const e = /** @type {ApiError} */ (err);
    errorBox.textContent = e.status === 409 ? t("safety.recheck.already") : e.message;
    errorBox.hidden = false;
    toast(t("safety.recheck.failed"), "error");
  } finally {
    save.disabled = false;
  }
});

load();
