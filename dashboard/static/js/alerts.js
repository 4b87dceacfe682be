// @ts-check
/* Alerts centre (GET /api/v1/alerts): filter, acknowledge and resolve with a note. */
import { actions, details, districtNames } from "./alert-actions.js";
import { el } from "./lib/dom.js";
import { dateTime, dayInstant } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";
import { alertKind, severityBadge, stateBadge } from "./lib/ui.js";

const districts = districtNames();
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

const page = listPage({
  endpoint: "/api/v1/alerts",
  emptyTitle: "alerts.empty",
  emptyHint: "alerts.empty_hint",
  emptyIcon: "✓",
  query: (v) => ({ ...v, from: dayInstant(v.from), to: dayInstant(v.to, true) }),
  rowAttrs: (a) => ({ dataset: { alertId: String(a.id), state: a.state } }),
  columns: [
    { label: "alert.severity", render: (a) => severityBadge(a.severity), sort: (a) => SEVERITY_ORDER[/** @type {"critical"} */ (a.severity)] },
    { label: "alert.kind", render: (a) => el("div", {}, el("b", { text: alertKind(a.kind) }), a.count > 1 ? el("span", { class: "muted", text: " ×" + a.count }) : null) },
    { label: "alert.subject", render: (a) => {
      const subj = String(a.subject_id || "");
      const link = a.cylinder_id ? el("a", { class: "mono", href: "/cylinders/" + a.cylinder_id, text: subj }) : el("span", { class: "mono", text: subj });
      const more = details(a);
      return el("div", {}, link, more ? el("div", { class: "alert-details", text: more }) : null);
    } },
    { label: "alert.where", render: (a) => [a.site_name, a.company_name, districts[a.district]].filter(Boolean).join(" · ") || "—" },
    { label: "alert.last_at", render: (a) => el("span", { title: t("alert.first_at") + " " + dateTime(a.first_at), text: dateTime(a.last_at) }), sort: (a) => a.last_at },
    { label: "alert.state", render: (a) => el("div", {}, stateBadge(a.state), a.note ? el("div", { class: "muted", text: a.note }) : null) },
    { label: "alert.actions", render: (a) => actions(a, () => page.reload()) || "—" },
  ],
});
