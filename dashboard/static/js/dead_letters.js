// @ts-check
/* Dead letters (GET /api/v1/dead-letters, admin): device payloads ingest refused, and why. */
import { el } from "./lib/dom.js";
import { dateTime, dayInstant } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { listPage } from "./lib/table.js";

listPage({
  endpoint: "/api/v1/dead-letters",
  emptyTitle: "dead.empty",
  emptyHint: "dead.empty_hint",
  emptyIcon: "✓",
  query: (v) => ({ ...v, from: dayInstant(v.from), to: dayInstant(v.to, true) }),
  columns: [
    { label: "dead.received_at", render: (r) => dateTime(r.received_at), sort: (r) => r.received_at },
    { label: "dead.topic", render: (r) => el("span", { class: "mono", text: r.topic }), sort: (r) => r.topic },
    { label: "dead.reason", key: "reason", sort: (r) => r.reason },
    { label: "dead.worker", key: "worker" },
    { label: "dead.payload", render: (r) =>
      el("details", {}, el("summary", { text: t("dead.bytes", { n: r.size }) }), el("pre", { class: "mono", text: String(r.payload || "") })) },
  ],
});
