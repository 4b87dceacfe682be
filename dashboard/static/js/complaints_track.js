// @ts-check
/* The complainant's tracking page (/complaints/track?ticket=, no login): the state of the
   complaint, the date of each step, the deadline and — once there is one — the answer and the
   outcome, from GET /api/v1/public/complaints/{ticket}. Nothing about people is ever sent. */
import { api } from "./lib/api.js";
import { config } from "./lib/config.js";
import { byId, clear, el } from "./lib/dom.js";
import { date, dateTime } from "./lib/format.js";
import { t } from "./lib/i18n.js";

const box = byId("track-result");

/** "ABCD-EFGH-JKLM" @param {string} ticket */
function grouped(ticket) {
  return ticket.replace(/(.{4})(?=.)/g, "$1-");
}

/** @param {string} message @param {string} [testid] */
function notice(message, testid) {
  clear(box).appendChild(el("section", { class: "public-card" },
    el("div", { class: "alert-box alert-error", role: "alert", dataset: { testid: testid || "track-error" }, text: message })));
}

/** @param {any} c */
function steps(c) {
  /** @type {[string, unknown, string?][]} */
  const all = [
    ["new", c.created_at],
    ["assigned", c.assigned_at],
    ["answered", c.answered_at],
    ["closed", c.closed_at, c.outcome ? t("complaints.outcome." + c.outcome) : undefined],
  ];
  return el("ol", { class: "public-trail", dataset: { testid: "track-steps" } },
    all.filter(([, at]) => at).map(([state, at, extra]) => el("li", { dataset: { state } },
      el("span", { class: "trail-date", text: dateTime(at) }),
      el("b", { text: t("complaints.track.step." + state) }),
      extra ? el("span", { class: "trail-where", text: extra }) : el("span"))));
}

/** @param {any} c */
function draw(c) {
  const status = el("section", { class: "public-status", dataset: { testid: "track-status" } },
    el("p", { class: "muted", text: t("complaints.kind." + c.kind) }),
    el("p", { class: "status-word", dataset: { testid: "track-state", value: c.state }, text: t("complaints.state." + c.state) }),
    el("p", { class: "public-ticket mono", text: grouped(c.ticket) }),
    c.outcome ? el("p", { dataset: { testid: "track-outcome", value: c.outcome }, text: t("complaints.outcome." + c.outcome) }) : null);
  const facts = el("section", { class: "public-card" },
    el("h2", { text: t("complaints.track.progress") }),
    steps(c),
    el("dl", {}, el("div", {}, el("dt", { text: t("complaints.deadline") }), el("dd", { text: date(c.deadline) }))),
    c.overdue ? el("p", { class: "alert-box alert-error", dataset: { testid: "track-overdue" }, text: t("complaints.track.overdue") }) : null);
  const answer = c.answer
    ? el("section", { class: "public-card" },
      el("h2", { text: t("complaints.answer") }),
      el("p", { class: "complaint-text", dataset: { testid: "track-answer" }, text: c.answer }))
    : el("section", { class: "public-card" }, el("p", { class: "muted", dataset: { testid: "track-waiting" }, text: t("complaints.track.waiting") }));
  clear(box).append(status, facts, answer);
}

async function load() {
  if (!config.ticket) {
    if (config.ticket_given) notice(t("complaints.track.bad_ticket"));
    return;
  }
  clear(box).appendChild(el("section", { class: "public-card" }, el("div", { class: "loading", text: t("common.loading") })));
  try {
    draw(await api("/api/v1/public/complaints/" + encodeURIComponent(config.ticket), { noRedirect: true }));
  } catch (err) {
    const e = /** @type {{status?: number, message: string}} */ (err);
    if (e.status === 404) notice(t("complaints.track.not_found"), "track-not-found");
    else if (e.status === 429) notice(t("public.rate_limited"));
    else notice(t("error.load_failed") + " " + e.message);
  }
}

load();
