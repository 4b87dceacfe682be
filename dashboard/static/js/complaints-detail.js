// @ts-check
/* One complaint (GET /api/v1/complaints/{id}) in the page's dialog: what was reported, the
   photo, the complainant's contact (only when the API sends it: regulators), the answer, the
   history of every move with who and when, and the moves the caller may make now
   (PATCH /api/v1/complaints/{id}: assign, answer, close) as the API's `may` says. */
import { api } from "./lib/api.js";
import { byId, clear, el, formValues } from "./lib/dom.js";
import { date, dateTime, text } from "./lib/format.js";
import { t, tOr } from "./lib/i18n.js";
import { errorState, loading, toast } from "./lib/ui.js";

/** "ABCD-EFGH-JKLM": a ticket in groups of four, as people read it. @param {string} ticket */
export function ticketText(ticket) {
  return String(ticket || "").replace(/(.{4})(?=.)/g, "$1-");
}

/** @param {string} state @param {string | null} [outcome] */
export function stateBadge(state, outcome) {
  const label = t("complaints.state." + state) + (outcome ? " · " + t("complaints.outcome." + outcome) : "");
  return el("span", { class: "badge complaint-" + state + (outcome ? " complaint-" + outcome : ""), dataset: { value: state, testid: "complaint-state" } }, label);
}

const dialog = /** @type {HTMLDialogElement} */ (byId("detail-dialog"));
const bodyBox = byId("detail-body");
const forms = {
  assign: /** @type {HTMLFormElement} */ (byId("assign-form")),
  answer: /** @type {HTMLFormElement} */ (byId("answer-form")),
  close: /** @type {HTMLFormElement} */ (byId("close-form")),
};
/** @type {any} */
let current = null;
/** @type {() => void} */
let changed = () => {};

byId("detail-close").addEventListener("click", () => dialog.close());

/** @param {string} label @param {Node | string | null} value @param {string} [testid] */
function row(label, value, testid) {
  return el("div", { dataset: testid ? { testid } : {} }, el("dt", { text: t(label) }), el("dd", {}, value === null || value === "" ? "—" : value));
}

/** @param {any} c */
function assignee(c) {
  return c.assigned_company_name || c.assigned_user_name || t("complaints.unassigned");
}

/** @param {any} e */
function eventLine(e) {
  const who = e.actor_name
    ? e.actor_name + " · " + tOr("role." + e.actor_role, e.actor_role)
    : t(e.kind === "filed" ? "complaints.event.public" : "complaints.event.platform");
  /** @type {string[]} */
  const facts = [];
  if (e.kind === "assign") facts.push(t("complaints.event.to", { who: e.assigned_company_name || e.assigned_user_name || "—" }));
  if (e.details && e.details.deadline) facts.push(t("complaints.event.deadline", { date: date(e.details.deadline) }));
  if (e.details && e.details.outcome) facts.push(t("complaints.outcome." + e.details.outcome));
  if (e.details && e.details.sms) facts.push(t("complaints.event.sms"));
  return el("li", { dataset: { kind: e.kind, testid: "history-item" } },
    el("span", { class: "history-at", text: dateTime(e.at) }),
    el("div", { class: "cell-stack" },
      el("b", { text: t("complaints.event." + e.kind) }),
      el("span", { class: "muted", text: [who, ...facts].join(" · ") }),
      e.note ? el("span", { class: "history-note", text: e.note }) : null));
}

/** @param {any} c */
function draw(c) {
  current = c;
  byId("detail-title").textContent = t("complaints.detail.title", { ticket: ticketText(c.ticket) });
  const facts = el("dl", { class: "kv complaint-facts" },
    row("complaints.state", stateBadge(c.state, c.outcome)),
    row("complaints.kind", t("complaints.kind." + c.kind)),
    row("complaints.source", t("complaints.source." + c.source)),
    row("complaints.filed", dateTime(c.created_at)),
    row("complaints.deadline", el("span", {}, date(c.deadline),
      c.overdue ? el("span", { class: "badge badge-overdue" }, t("complaints.overdue.true")) : null)),
    row("complaints.company", text(c.company_name)),
    row("complaints.cylinder", c.cylinder_id ? el("a", { href: "/cylinders/" + c.cylinder_id, text: c.cylinder_barcode || c.code }) : text(c.code)),
    row("complaints.assignee", assignee(c)),
    // the API sends the contact to regulators only; a company's admin never receives it
    "contact" in c ? row("complaints.contact", text(c.contact), "detail-contact") : null);
  const parts = [facts, el("h3", { text: t("complaints.text") }), el("p", { class: "complaint-text", dataset: { testid: "detail-text" }, text: c.text })];
  if (c.has_photo) {
    const src = "/api/v1/complaints/" + c.id + "/photo";
    parts.push(el("a", { href: src, target: "_blank", rel: "noopener" },
      el("img", { class: "complaint-photo", src, alt: t("complaints.photo"), dataset: { testid: "detail-photo" } })));
  }
  if (c.answer) {
    parts.push(el("h3", { text: t("complaints.answer") }),
      el("p", { class: "complaint-text", dataset: { testid: "detail-answer" }, text: c.answer }),
      el("p", { class: "muted", text: dateTime(c.answered_at) }));
  }
  parts.push(el("h3", { text: t("complaints.history") }), el("ol", { class: "complaint-history", dataset: { testid: "history" } }, (c.history || []).map(eventLine)));
  clear(bodyBox).append(...parts);
  const may = c.may || {};
  for (const [action, form] of Object.entries(forms)) {
    form.reset();
    form.hidden = !may[action];
  }
  if (may.assign) {
    const deadline = /** @type {HTMLInputElement} */ (forms.assign.elements.namedItem("deadline"));
    deadline.value = c.deadline || "";
  }
  // closing a complaint nobody answered needs the answer the complainant will read
  const unanswered = c.state !== "answered";
  const closeAnswer = /** @type {HTMLTextAreaElement} */ (forms.close.elements.namedItem("answer"));
  byId("close-answer-field").hidden = !unanswered;
  closeAnswer.required = unanswered;
}

/**
 * Open the dialog on complaint *id*; *onChange* runs after each move.
 * @param {number} id
 * @param {() => void} [onChange]
 */
export async function openDetail(id, onChange) {
  changed = onChange || (() => {});
  for (const form of Object.values(forms)) form.hidden = true;
  byId("detail-title").textContent = "";
  loading(bodyBox);
  if (!dialog.open) dialog.showModal();
  try {
    draw(await api("/api/v1/complaints/" + id));
  } catch (err) {
    errorState(bodyBox, /** @type {Error} */ (err));
  }
}

/**
 * @param {HTMLFormElement} form
 * @param {(v: Record<string, string>) => Record<string, unknown>} bodyOf
 * @param {string} done a string key of the toast
 */
function onSubmit(form, bodyOf, done) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current || !form.reportValidity()) return;
    const btn = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
    btn.disabled = true;
    try {
      const body = bodyOf(formValues(form));
      const moved = await api("/api/v1/complaints/" + current.id, { method: "PATCH", body });
      toast(t(done, { ticket: ticketText(moved.ticket) }));
      draw(moved);
      changed();
    } catch (err) {
      toast(/** @type {Error} */ (err).message, "error");
    } finally {
      btn.disabled = false;
    }
  });
}

/** @param {Record<string, unknown>} body @param {string | undefined} note */
function withNote(body, note) {
  if (note && note.trim()) body.note = note.trim();
  return body;
}

onSubmit(forms.assign, (v) => {
  const [kind, id] = (v.assignee || ":").split(":");
  /** @type {Record<string, unknown>} */
  const body = { action: "assign", [kind === "user" ? "user_id" : "company_id"]: Number(id) };
  if (v.deadline && v.deadline !== current.deadline) body.deadline = v.deadline;
  return withNote(body, v.note);
}, "complaints.assign.done");

onSubmit(forms.answer, (v) => ({ action: "answer", answer: (v.answer || "").trim() }), "complaints.answer.done");

onSubmit(forms.close, (v) => {
  /** @type {Record<string, unknown>} */
  const body = { action: "close", outcome: v.outcome };
  if (current.state !== "answered" && v.answer && v.answer.trim()) body.answer = v.answer.trim();
  return withNote(body, v.note);
}, "complaints.close.done");
