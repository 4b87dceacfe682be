// @ts-check
/* The safety inspection at the customer (入户安检) on the phone (officer PWA /m; docs/API.md
   "Safety inspections"; docs/ARCHITECTURE.md §8), for the roles that inspect (the page
   config's `inspect_roles`: delivery staff and officers).

   1. Find the customer: search the real-name accounts (GET /api/v1/customers?q=) or scan a
      cylinder standing at the premises (its archive's `location.customer_id`).
   2. Walk the catalogue of the customer's kind (GET /api/v1/safety-items?customer_kind=),
      grouped: each item pass / fail / n.a.; a failed item takes a note and a photo from the
      camera (required where the item says so), downscaled on the phone (photo.js).
   3. Notes, the customer's signature on a canvas (signature.js), submit.
   Offline first: the catalogues of every kind and the customers found today are kept in
   IndexedDB (store.js) and used when the network is gone; a completed inspection is kept
   there with its client_id and sent by offline-queue.js (now if there is signal, else when it
   returns). The screen shows what waits and what the server refused, with its reason.
   window.__m.safety exposes what was shown (for tests). */
import { api } from "/static/js/lib/api.js";
import { config } from "/static/js/lib/config.js";
import { byId, clear, el } from "/static/js/lib/dom.js";
import { cityFormat } from "/static/js/lib/format.js";
import { lang, t, tOr } from "/static/js/lib/i18n.js";
import * as queue from "./offline-queue.js";
import { downscale } from "./photo.js";
import { Scanner } from "./scan.js";
import { SignaturePad } from "./signature.js";
import * as store from "./store.js";

const SEARCH_MATCHES = 20;
const KINDS = /** @type {string[]} */ (config.customer_kinds || ["resident"]);
const PHOTOS_MAX = Number(config.safety_photos_max) || 10;

/** What the inspection view did (tests read it through window.__m.safety). */
export const shown = {
  /** @type {number | null} */ customer: null,
  /** @type {number | null} */ catalogue: null,
  catalogueFrom: "",
  customersFrom: "",
  /** @type {string | null} */ outcome: null,
  /** @type {string | null} */ clientId: null,
  waiting: 0,
  failed: 0,
  cachedKinds: 0,
};

/** @param {{role?: string} | null} user */
export function mayInspect(user) {
  return !!user && (config.inspect_roles || []).includes(user.role);
}

const fmtTime = cityFormat({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: config.timezone || undefined, year: "numeric", month: "2-digit", day: "2-digit" });
/** The city's day now (YYYY-MM-DD): customers found today are kept for today's work. */
const today = () => dayFormat.format(new Date());

/** A UUID for the record (crypto.randomUUID where the browser has it). */
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
}

/** @type {any} */
let user = null;
const findBox = byId("safety-find");
const customersBox = byId("safety-customers");
const form = /** @type {HTMLFormElement} */ (byId("safety-form"));
const itemsBox = byId("safety-items");
const resultBox = byId("safety-result");
const formError = byId("safety-error");
const submitBtn = /** @type {HTMLButtonElement} */ (byId("safety-submit"));
const notes = /** @type {HTMLTextAreaElement} */ (byId("safety-notes"));
const searchInput = /** @type {HTMLInputElement} */ (byId("safety-q"));
const pad = new SignaturePad(/** @type {HTMLCanvasElement} */ (byId("safety-signature")));

// ------------------------------------------------------------------ offline caches
/** @param {any[]} rows */
function keepCustomers(rows) {
  const day = today();
  return Promise.all(rows.map((c) => store.put("customers", { ...c, cached_on: day }))).catch(() => {});
}

/** Catalogues of every kind and the first page of the caller's customers, for work offline. */
function refreshCaches() {
  const cats = KINDS.map((kind) => api("/api/v1/safety-items", { query: { customer_kind: kind } })
    .then((cat) => store.put("catalogues", cat)).then(() => 1, () => 0));
  Promise.all(cats).then((n) => { shown.cachedKinds = n.reduce((a, b) => a + b, 0); });
  api("/api/v1/customers", { query: { page_size: config.page_size_max, state: "open" } })
    .then((env) => keepCustomers(env.items || [])).catch(() => {});
  // yesterday's customers are not today's round
  store.all("customers").then((rows) => Promise.all(rows.filter((c) => c.cached_on !== today())
    .map((c) => store.remove("customers", c.id)))).catch(() => {});
}

/** @param {string} kind */
async function catalogue(kind) {
  try {
    const cat = await api("/api/v1/safety-items", { query: { customer_kind: kind } });
    store.put("catalogues", cat).catch(() => {});
    shown.catalogueFrom = "network";
    return cat;
  } catch (e) {
    const cached = await store.get("catalogues", kind).catch(() => null);
    if (!cached) throw e;
    shown.catalogueFrom = "cache";
    return cached;
  }
}

// ------------------------------------------------------------------ 1. find the customer
/** @param {any} c */
function customerLine(c) {
  return [c.account_no, c.address, tOr("customer_kind." + c.kind, c.kind)].filter(Boolean).join(" · ");
}

/** @param {any[]} rows @param {string} [note] */
function listCustomers(rows, note) {
  clear(customersBox);
  if (note) customersBox.appendChild(el("p", { class: "m-muted", text: note }));
  if (!rows.length) { customersBox.appendChild(el("p", { class: "m-empty", text: t("safety.no_customer") })); return; }
  customersBox.appendChild(el("ul", { class: "m-list", id: "safety-customer-list" }, rows.map((c) =>
    el("li", {}, el("button", { type: "button", class: "m-btn wide m-pick", dataset: { customer: String(c.id) }, onclick: () => begin(c) },
      el("b", { text: c.name }), el("span", { text: customerLine(c) }))))));
}

/** @param {string} raw */
async function search(raw) {
  const q = raw.trim();
  clear(customersBox).appendChild(el("p", { class: "m-muted", text: t("lookup.loading") }));
  try {
    const env = await api("/api/v1/customers", { query: { q, state: "open", page_size: SEARCH_MATCHES } });
    const rows = env.items || [];
    shown.customersFrom = "network";
    keepCustomers(rows);
    listCustomers(rows);
  } catch (e) {
    if (/** @type {any} */ (e).status) { listCustomers([], t("safety.search_failed")); return; }
    const needle = q.toLowerCase();
    const rows = (await store.all("customers").catch(() => [])).filter((c) => c.cached_on === today() &&
      [c.name, c.account_no, c.phone, c.address].some((v) => v && String(v).toLowerCase().includes(needle)));
    shown.customersFrom = "cache";
    listCustomers(rows.slice(0, SEARCH_MATCHES), t("safety.offline_customers"));
  }
}

/** A scanned cylinder → the customer it stands at, if the archive says (and the role reads it). @param {string} code */
async function fromCylinder(code) {
  clear(customersBox).appendChild(el("p", { class: "m-muted", text: t("lookup.loading") }));
  try {
    const env = await api("/api/v1/cylinders", { query: { q: code, page_size: SEARCH_MATCHES } });
    const items = env.items || [];
    const exact = items.filter((/** @type {any} */ c) => c.tag === code || c.barcode === code || c.stamp === code);
    const one = exact.length === 1 ? exact[0] : items.length === 1 ? items[0] : null;
    const cyl = one ? await api("/api/v1/cylinders/" + one.id) : null;
    const cid = cyl && cyl.location && cyl.location.kind === "customer" ? cyl.location.customer_id : null;
    if (!cid) { listCustomers([], t("safety.scan_no_customer")); return; }
    const c = await api("/api/v1/customers/" + cid);
    keepCustomers([c]);
    listCustomers([c], t("safety.scan_found", { tag: cyl.tag }));
  } catch {
    listCustomers([], navigator.onLine ? t("safety.scan_no_customer") : t("safety.scan_offline"));
  }
}

byId("safety-search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(searchInput.value); });

export const scanner = new Scanner(byId("safety-scan-btn"), /** @type {HTMLVideoElement} */ (byId("safety-video")),
  ({ code }) => { fromCylinder(code); },
  (message) => { clear(customersBox).appendChild(el("p", { class: "m-error", text: message })); });

// ------------------------------------------------------------------ 2. walk the items
/** @type {{customer: any, cat: any} | null} */
let current = null;
/** Photos taken, per item id (already downscaled). @type {Map<number, {blob: Blob, url: string}>} */
const photos = new Map();

/** @param {any} item */
const itemText = (item) => (lang === "en" ? item.text_en : item.text_zh) || item.text_zh;

/** @param {any} item */
function renderItem(item) {
  const id = String(item.id);
  const photoInput = el("input", { type: "file", accept: "image/*", capture: "environment", class: "m-photo-input", dataset: { photoFor: id } });
  const thumb = el("div", { class: "m-thumb" });
  const failBox = el("div", { class: "m-fail", hidden: true },
    el("input", { type: "text", class: "m-item-note", maxlength: 1000, placeholder: t("safety.item_note"), dataset: { noteFor: id } }),
    el("label", { class: "m-btn m-photo-btn" }, item.photo_required_on_fail ? t("safety.photo_required") : t("safety.photo"), photoInput),
    thumb);
  photoInput.addEventListener("change", () => {
    const file = /** @type {HTMLInputElement} */ (photoInput).files?.[0];
    if (!file) return;
    clear(thumb).appendChild(el("span", { class: "m-muted", text: t("safety.photo_working") }));
    downscale(file).then(({ blob }) => {
      const old = photos.get(item.id);
      if (old) URL.revokeObjectURL(old.url);
      const url = URL.createObjectURL(blob);
      photos.set(item.id, { blob, url });
      clear(thumb).appendChild(el("img", { src: url, alt: t("safety.photo"), dataset: { photoOf: id } }));
    }).catch(() => { clear(thumb).appendChild(el("span", { class: "m-error", text: t("safety.photo_bad") })); });
  });
  const choices = el("div", { class: "m-answers", role: "radiogroup" }, (item.answers || ["pass", "fail", "na"]).map((/** @type {string} */ a) =>
    el("label", { class: "m-answer a-" + a },
      el("input", { type: "radio", name: "answer-" + id, value: a, onchange: () => { failBox.hidden = a !== "fail"; row.classList.remove("m-invalid"); } }),
      el("span", { text: t("safety.answer." + a) }))));
  const row = el("div", { class: "m-item", dataset: { itemId: id, code: item.code } },
    el("p", { class: "m-item-text", text: itemText(item) + (item.photo_required_on_fail ? " 📷" : "") }), choices, failBox);
  return row;
}

/** @param {any} cat */
function renderItems(cat) {
  clear(itemsBox);
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const item of cat.items) {
    if (!groups.has(item.group_code)) groups.set(item.group_code, []);
    /** @type {any[]} */ (groups.get(item.group_code)).push(item);
  }
  groups.forEach((items, code) => itemsBox.appendChild(el("section", { class: "m-card m-group", dataset: { group: code } },
    el("h2", { text: tOr("safety.group." + code, code) }), items.map(renderItem))));
}

/** @param {any} customer */
async function begin(customer) {
  formError.textContent = "";
  clear(resultBox);
  let cat;
  try {
    cat = await catalogue(customer.kind || "resident");
  } catch {
    listCustomers([], t("safety.no_catalogue"));
    return;
  }
  current = { customer, cat };
  shown.customer = customer.id;
  shown.catalogue = cat.catalogue_id;
  photos.forEach((p) => URL.revokeObjectURL(p.url));
  photos.clear();
  form.reset();
  renderItems(cat);
  clear(byId("safety-customer")).append(el("h2", { text: customer.name }),
    el("p", { class: "m-muted", text: customerLine(customer) }),
    el("p", { class: "m-muted", text: t("safety.catalogue_version", { v: cat.version }) }));
  findBox.hidden = true;
  form.hidden = false;
  pad.fit();
  pad.clear();
  window.scrollTo(0, 0);
}

function close() {
  current = null;
  shown.customer = null;
  form.hidden = true;
  findBox.hidden = false;
}
byId("safety-cancel").addEventListener("click", close);
byId("safety-sign-clear").addEventListener("click", () => pad.clear());

// ------------------------------------------------------------------ 3. submit
/** The answers as the API's record, or a reason to refuse. */
function collect() {
  if (!current) return { error: "" };
  /** @type {any[]} */
  const answers = [];
  /** @type {number[]} */
  const photoItems = [];
  /** @type {{item_id: number, blob: Blob}[]} */
  const blobs = [];
  let missing = 0;
  let noPhoto = 0;
  for (const item of current.cat.items) {
    const row = /** @type {HTMLElement} */ (itemsBox.querySelector('[data-item-id="' + item.id + '"]'));
    const picked = /** @type {HTMLInputElement | null} */ (row.querySelector("input[type=radio]:checked"));
    if (!picked) { missing += 1; row.classList.add("m-invalid"); continue; }
    const a = { item_id: item.id, answer: picked.value };
    if (picked.value === "fail") {
      const note = /** @type {HTMLInputElement} */ (row.querySelector(".m-item-note")).value.trim();
      if (note) Object.assign(a, { note });
      const ph = photos.get(item.id);
      if (ph) { photoItems.push(item.id); blobs.push({ item_id: item.id, blob: ph.blob }); }
      else if (item.photo_required_on_fail) { noPhoto += 1; row.classList.add("m-invalid"); }
    }
    answers.push(a);
  }
  if (missing) return { error: t("safety.unanswered", { n: missing }) };
  if (noPhoto) return { error: t("safety.photo_missing", { n: noPhoto }) };
  if (blobs.length > PHOTOS_MAX) return { error: t("safety.too_many_photos", { n: PHOTOS_MAX }) };
  if (pad.isEmpty()) return { error: t("safety.unsigned") };
  const record = {
    client_id: uuid(),
    customer_id: current.customer.id,
    catalogue_id: current.cat.catalogue_id,
    answers,
    inspected_at: new Date().toISOString(),
    photo_items: photoItems,
  };
  const text = notes.value.trim();
  if (text) Object.assign(record, { notes: text });
  return { record, blobs };
}

/** @param {any} rec the stored record (GET /api/v1/safety-inspections/{id}) @param {any} customer */
function showSent(rec, customer) {
  const rects = rec.rectifications || [];
  clear(resultBox).appendChild(el("section", { class: "m-card m-done", id: "safety-done", dataset: { result: rec.result, id: String(rec.id) } },
    el("h2", { text: t("safety.sent." + rec.result, { name: customer.name }) }),
    el("dl", { class: "m-dl" },
      el("dt", { text: t("safety.when") }), el("dd", { text: fmtTime.format(new Date(rec.inspected_at)) }),
      el("dt", { text: t("safety.failed_count") }), el("dd", { id: "safety-failed-count", text: String(rec.failed_count ?? rects.length) }),
      el("dt", { text: t("safety.sealed") }), el("dd", { text: rec.seal && rec.seal.valid ? t("safety.seal_ok") : "—" })),
    rects.length ? el("h3", { text: t("safety.rectifications") }) : null,
    rects.length ? el("ul", { class: "m-list", id: "safety-rectifications" }, rects.map((/** @type {any} */ r) => el("li", {},
      el("b", { text: (lang === "en" ? r.text_en : r.text_zh) || r.code }),
      el("span", { text: t("safety.deadline", { date: r.deadline }) })))) : null));
}

/** @param {any} reason */
function reasonText(reason) {
  if (!reason) return "";
  const field = reason.details && reason.details.field ? " (" + reason.details.field + ")" : "";
  return tOr("safety.refused." + reason.code, t("safety.refused")) + field + (reason.message ? ": " + reason.message : "");
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  formError.textContent = "";
  const got = collect();
  if (!got.record || !current) { formError.textContent = got.error || ""; return; }
  const customer = current.customer;
  submitBtn.disabled = true;
  submitBtn.textContent = t("safety.sending");
  try {
    const signature = await pad.toBlob();
    shown.clientId = got.record.client_id;
    await queue.enqueue({ client_id: got.record.client_id, record: got.record, photos: got.blobs, signature,
      customer: { id: customer.id, name: customer.name, account_no: customer.account_no },
      user_id: user ? user.user_id : null, username: user ? user.username : "" });
    const sent = queue.results.get(got.record.client_id);
    const left = await store.get("queue", got.record.client_id);
    close();
    if (sent) { shown.outcome = "sent"; showSent(sent, customer); }
    else if (left && left.state === "failed") {
      shown.outcome = "refused";
      clear(resultBox).appendChild(el("p", { class: "m-error m-card", id: "safety-refused", text: reasonText(left.reason) }));
    } else {
      shown.outcome = "waiting";
      clear(resultBox).appendChild(el("p", { class: "m-card m-waiting", id: "safety-kept", text: t("safety.kept", { name: customer.name }) }));
    }
    resultBox.scrollIntoView({ block: "start" });
  } catch (e) {
    formError.textContent = t("safety.not_kept") + " " + (e instanceof Error ? e.message : "");
  } finally {
    submitBtn.disabled = false;
    submitBtn.textContent = t("safety.submit");
  }
});

// ------------------------------------------------------------------ what waits
const queueBox = byId("safety-queue");
async function renderQueue() {
  const rows = await store.queued().catch(() => []);
  const waiting = rows.filter((e) => e.state === "waiting");
  const failed = rows.filter((e) => e.state === "failed");
  shown.waiting = waiting.length;
  shown.failed = failed.length;
  const badge = byId("safety-badge");
  badge.hidden = rows.length === 0;
  badge.textContent = String(rows.length);
  queueBox.hidden = rows.length === 0;
  byId("safety-queue-count").textContent = t("safety.queue_count", { waiting: waiting.length, failed: failed.length });
  clear(byId("safety-queue-list")).append(...rows.map((e) => el("li", { class: "m-queued " + e.state, dataset: { clientId: e.client_id, state: e.state } },
    el("b", { text: e.customer.name + " · " + fmtTime.format(new Date(e.record.inspected_at)) }),
    el("span", { text: e.state === "failed" ? reasonText(e.reason) : t("safety.waiting") + (e.tries ? " · " + t("safety.tries", { n: e.tries }) : "") }),
    e.state === "failed" ? el("button", { type: "button", class: "m-btn danger", dataset: { discard: e.client_id }, text: t("safety.discard"),
      onclick: () => { if (confirm(t("safety.discard_confirm"))) queue.discard(e.client_id); } }) : null)));
  byId("safety-queue-list").dataset.count = String(waiting.length);
}
queue.onChange(() => { renderQueue(); });

/** The user is known (at start, or from the cache offline): send what waits. @param {any} u @param {boolean} online */
export function started(u, online) {
  user = u;
  queue.setUser(u ? u.user_id : null);
  // logged out: the customers' names and addresses leave the phone (the queue stays: it is
  // signed work not yet stored anywhere else)
  if (!u) store.all("customers").then((rows) => Promise.all(rows.map((c) => store.remove("customers", c.id)))).catch(() => {});
  renderQueue();
  if (online) {
    if (mayInspect(u)) refreshCaches();
    queue.flush();
  }
}

/** The tab opened. */
export function opened() {
  renderQueue();
  if (!form.hidden) pad.fit();
}
