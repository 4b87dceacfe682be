"""Credit evaluation in SQL: the ledger's derivation from the facts, its sums per window, the
snapshots' writes and reads, company search (docs/ARCHITECTURE.md §4; DOMAIN.md "Credit
evaluation").

The derivation is one statement per kind into a temporary table ``credit_derived`` of the
round's transaction; :mod:`server.db.credit_round` then upserts it into ``credit_events`` by
(kind, source_type, source_id) and removes the derived entries whose fact has gone. Each
statement reads an indexed range of its facts since the first day any snapshot of the round
counts (``since``), never the whole table:

- ``denied_attempt``: the trajectory's ``fill_refused`` events (``events_kind_idx``) with a
  counted reason, one entry per company, station and city day (``count`` = attempts);
- ``overfill``, ``suspected_illegal_fill``: one entry per alert (``count`` = the alert's count:
  a repeat while it is open bumps it);
- ``overstock_day``: one entry per site and city day its overstock alerts cover (first to
  last observation);
- ``complaint_upheld``: one entry per complaint closed as upheld (``complaints_upheld_idx``);
- ``licence_lapsed``: one entry per holder (company or station) and day its licence was
  suspended or revoked (the audit log's ``licence.*`` and edits, and the present status) or
  expired (the day after ``licence_expiry``), charged to the holder's company;
- ``rectification_overdue``: one entry per rectification the safety round marked overdue
  (``server.db.safety.CREDIT_DERIVE``, the same entry that round writes at once).

Scope for reading: :func:`company_scope` — the admin and city-wide regulators see every
company; district regulators and officers the companies registered in, or running a site in,
their districts; a company admin its own company.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from server.db import safety
from server.kernel.principal import Principal
from server.kernel.scope import Sql

__all__ = [
    "DERIVE",
    "LATEST_MONTH",
    "company_scope",
    "has_trigram",
    "name_match",
]

DERIVED_TABLE: Final = """
CREATE TEMP TABLE credit_derived (
    company_id bigint NOT NULL, day date NOT NULL, kind text NOT NULL, points numeric NOT NULL,
    count integer NOT NULL, source_type text NOT NULL, source_id text NOT NULL,
    site_id bigint, note text
) ON COMMIT DROP"""

_DENIED = """
INSERT INTO credit_derived
SELECT e.company_id, d.day, 'denied_attempt', $4::numeric * count(*), count(*), 'fill_refused',
       e.company_id || ':' || coalesce(e.site_id::text, '-') || ':' || d.day,
       e.site_id, NULL
  FROM events e
 CROSS JOIN LATERAL (SELECT (e.ts AT TIME ZONE $1)::date AS day) d
 WHERE e.kind = 'fill_refused' AND e.ts >= $2 AND d.day >= $3::date AND e.company_id IS NOT NULL
   AND jsonb_typeof(e.details -> 'reasons') = 'array' AND (e.details -> 'reasons') ?| $5::text[]
   AND EXISTS (SELECT 1 FROM companies co WHERE co.id = e.company_id)
 GROUP BY e.company_id, e.site_id, d.day"""

_ALERTS = """
INSERT INTO credit_derived
SELECT a.company_id, (a.first_at AT TIME ZONE $1)::date, a.kind, $4::numeric * a.count, a.count,
       'alert', a.id::text, a.site_id, a.subject_id
  FROM alerts a
 WHERE a.kind = $5 AND a.first_at >= $2 AND a.company_id IS NOT NULL
   AND (a.first_at AT TIME ZONE $1)::date >= $3::date"""

_OVERSTOCK = """
INSERT INTO credit_derived
SELECT x.company_id, x.day, 'overstock_day', $4::numeric, 1, 'site_day',
       x.company_id || ':' || x.site_id || ':' || x.day, x.site_id, min(x.subject_id)
  FROM (SELECT a.company_id, a.site_id, a.subject_id, g::date AS day
          FROM alerts a
         CROSS JOIN LATERAL generate_series(greatest((a.first_at AT TIME ZONE $1)::date, $3::date),
                                            (a.last_at AT TIME ZONE $1)::date,
                                            interval '1 day') AS g
         WHERE a.kind = 'overstock' AND a.last_at >= $2
           AND a.company_id IS NOT NULL AND a.site_id IS NOT NULL) x
 WHERE x.day >= $3::date
 GROUP BY x.company_id, x.site_id, x.day"""

_COMPLAINTS = """
INSERT INTO credit_derived
SELECT c.company_id, (c.closed_at AT TIME ZONE $1)::date, 'complaint_upheld', $4::numeric, 1,
       'complaint', c.id::text, NULL, c.ticket
  FROM complaints c
 WHERE c.outcome = 'upheld' AND c.closed_at >= $2 AND c.company_id IS NOT NULL
   AND (c.closed_at AT TIME ZONE $1)::date >= $3::date"""

_LAPSES = """
WITH lapse (holder, holder_id, day, what) AS (
    SELECT l.entity, l.entity_id::bigint, (l.at AT TIME ZONE $1)::date,
           coalesce(l.details ->> 'to', l.details -> 'after' ->> 'licence_status',
                    l.details ->> 'licence_status')
      FROM audit_log l
     WHERE l.at >= $2 AND l.entity IN ('company', 'site') AND l.entity_id ~ '^[0-9]{1,18}$'
       AND (l.action IN ('licence.suspend', 'licence.revoke')
            OR l.action IN ('company.update', 'site.update')
               -- a change records {"before", "after"} (server.api.rows.before_after);
               -- older rows the new values alone
               AND coalesce(l.details -> 'after' ->> 'licence_status',
                            l.details ->> 'licence_status') IN ('suspended', 'revoked'))
    UNION ALL
    SELECT 'company', co.id, (coalesce(co.licence_status_at, co.updated_at) AT TIME ZONE $1)::date,
           co.licence_status
      FROM companies co WHERE co.licence_status IN ('suspended', 'revoked')
    UNION ALL
    SELECT 'site', s.id, (coalesce(s.licence_status_at, s.updated_at) AT TIME ZONE $1)::date,
           s.licence_status
      FROM sites s WHERE s.licence_status IN ('suspended', 'revoked')
    UNION ALL
    SELECT 'company', co.id, co.licence_expiry + 1, 'expired'
      FROM companies co WHERE co.licence_expiry < $5::date AND co.licence_expiry >= $3::date - 1
    UNION ALL
    SELECT 'site', s.id, s.licence_expiry + 1, 'expired'
      FROM sites s WHERE s.licence_expiry < $5::date AND s.licence_expiry >= $3::date - 1
)
INSERT INTO credit_derived
SELECT h.company_id, x.day, 'licence_lapsed', $4::numeric, 1, 'licence',
       x.holder || ':' || x.holder_id || ':' || x.day, h.site_id,
       h.code || ' ' || string_agg(DISTINCT x.what, ', ' ORDER BY x.what)
  FROM lapse x
  JOIN LATERAL (
        SELECT co.id AS company_id, NULL::bigint AS site_id, co.code
          FROM companies co WHERE x.holder = 'company' AND co.id = x.holder_id
        UNION ALL
        SELECT s.company_id, s.id, s.code
          FROM sites s WHERE x.holder = 'site' AND s.id = x.holder_id AND s.company_id IS NOT NULL
       ) h ON true
 WHERE x.day >= $3::date AND x.day <= $5::date AND x.what IS NOT NULL
 GROUP BY h.company_id, h.site_id, h.code, x.holder, x.holder_id, x.day"""

DERIVE: Final[dict[str, tuple[str, str | None]]] = {
    "denied_attempt": (_DENIED, "reasons"),
    "overfill": (_ALERTS, "kind"),
    "overstock_day": (_OVERSTOCK, None),
    "suspected_illegal_fill": (_ALERTS, "kind"),
    "complaint_upheld": (_COMPLAINTS, None),
    "licence_lapsed": (_LAPSES, "today"),
    "rectification_overdue": (safety.CREDIT_DERIVE, None),
}
"""Derived kind → (statement, what its ``$5`` is). Every statement takes ``$1`` the city's
time zone, ``$2`` the instant ``since`` starts, ``$3`` ``since``, ``$4`` the signed points of
one event, then ``$5``: ``reasons`` the counted refusal reasons, ``kind`` the alert kind (the
entry's kind), ``today`` the city's day. A kind without a statement has no fact yet."""

UPSERT: Final = """
INSERT INTO credit_events AS c
       (company_id, day, kind, points, count, source_type, source_id, site_id, note)
SELECT d.company_id, d.day, d.kind, d.points, d.count, d.source_type, d.source_id, d.site_id,
       d.note
  FROM credit_derived d
  LEFT JOIN credit_events e
         ON e.kind = d.kind AND e.source_type = d.source_type AND e.source_id = d.source_id
 WHERE e.id IS NULL
    OR (e.company_id, e.day, e.points, e.count, e.site_id, e.note)
       IS DISTINCT FROM (d.company_id, d.day, d.points, d.count, d.site_id, d.note)
ON CONFLICT (kind, source_type, source_id) DO UPDATE
   SET company_id = EXCLUDED.company_id, day = EXCLUDED.day, points = EXCLUDED.points,
       count = EXCLUDED.count, site_id = EXCLUDED.site_id, note = EXCLUDED.note,
       updated_at = now()
RETURNING (xmax = 0) AS inserted"""
"""Only new entries and entries whose values changed are written (found by one hash join, so
an unchanged ledger is neither written nor locked row by row); the conflict clause keeps the
source unique whatever else writes meanwhile."""

PRUNE: Final = """
DELETE FROM credit_events c
 WHERE c.source_type <> 'manual' AND c.kind <> ALL($2::text[]) AND c.day >= $1
   AND NOT EXISTS (SELECT 1 FROM credit_derived d
                    WHERE d.kind = c.kind AND d.source_type = c.source_type
                      AND d.source_id = c.source_id)"""
"""Derived entries within the derivation window whose fact is gone (a complaint reopened, an
alert deleted), sticky kinds excepted (``server.domain.credit.STICKY_KINDS``)."""

SUMS: Final = """
WITH daily AS (
    SELECT company_id, kind, day, sum(count) AS count, sum(points) AS points
      FROM credit_events WHERE day BETWEEN $4::date AND $5::date
     GROUP BY company_id, kind, day)
SELECT w.month, d.company_id, d.kind, sum(d.count)::bigint AS count, sum(d.points) AS points
  FROM unnest($1::date[], $2::date[], $3::date[]) AS w (month, first_day, as_of)
  JOIN daily d ON d.day BETWEEN w.first_day AND w.as_of
 GROUP BY w.month, d.company_id, d.kind"""
"""Each snapshot's window sums per company and kind: the ledger of the snapshots' span read
once (``credit_events_day_idx``) and summed per company, kind and day first, so that the
overlapping windows join days, not entries."""

COMPANIES: Final = "SELECT id, (created_at AT TIME ZONE $1)::date AS since FROM companies"

WRITE_SCORES: Final = """
INSERT INTO credit_scores AS s
       (company_id, month, as_of, score, grade, rank, ranked_of, breakdown, computed_at)
SELECT u.company_id, u.month, u.as_of, u.score, u.grade, u.rank, u.ranked_of,
       u.breakdown::jsonb, now()
  FROM unnest($1::bigint[], $2::date[], $3::date[], $4::numeric[], $5::text[], $6::int[],
              $7::int[], $8::text[])
       AS u (company_id, month, as_of, score, grade, rank, ranked_of, breakdown)
ON CONFLICT (company_id, month) DO UPDATE
   SET as_of = EXCLUDED.as_of, score = EXCLUDED.score, grade = EXCLUDED.grade,
       rank = EXCLUDED.rank, ranked_of = EXCLUDED.ranked_of, breakdown = EXCLUDED.breakdown,
       computed_at = EXCLUDED.computed_at"""
"""Every company's snapshots of the round in one statement (the breakdown as JSON text: a
list of lists would be taken for a two-dimensional array)."""

LATEST_MONTH: Final = "(SELECT max(month) FROM credit_scores)"
"""The month of the newest snapshots: what "current" means to every page."""


def company_scope(p: Principal, alias: str, q: Sql) -> str:
    """The companies whose credit *p* may read, as SQL over ``companies`` named *alias*."""
    if p.role == "admin" or (p.role == "regulator" and p.city_wide):
        return "TRUE"
    if p.role in ("regulator", "officer"):
        districts = q.add(list(p.districts))
        return (
            f"({alias}.district_code = ANY({districts}) OR EXISTS (SELECT 1 FROM sites ds"
            f" WHERE ds.company_id = {alias}.id AND ds.district_code = ANY({districts})))"
        )
    if p.role == "company_admin" and p.company_id is not None:
        return f"{alias}.id = {q.add(p.company_id)}"
    return "FALSE"


async def has_trigram(db: asyncpg.Pool | asyncpg.Connection) -> bool:
    """Is pg_trgm installed in this database (migration 0160 creates it when it can)?"""
    return bool(
        await db.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')")
    )


def name_match(
    alias: str, text: str, q: Sql, *, trigram: bool, similarity: float
) -> tuple[str, str]:
    """(WHERE, ORDER BY) of a fuzzy company search: the code or name containing *text*, or a
    name resembling it (pg_trgm, when installed); the closest names first."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = q.add(f"%{escaped}%")
    contains = f"({alias}.name ILIKE {pattern} OR {alias}.code ILIKE {pattern})"
    if not trigram:
        return contains, f"{alias}.name"
    raw = q.add(text)
    where = f"({contains} OR similarity({alias}.name, {raw}) >= {q.add(similarity)})"
    order = f"({contains}) DESC, similarity({alias}.name, {raw}) DESC, {alias}.name"
    return where, order
