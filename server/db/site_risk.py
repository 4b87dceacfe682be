"""The officer's inspection list in SQL: every factor of every site in scope in one query,
scored and ranked with the domain's arithmetic (docs/ARCHITECTURE.md §4;
``server.domain.site_risk``).

One statement: the sites the caller may see (``server.kernel.scope.scope_where`` on
``sites``, of :data:`~server.domain.site_risk.SITE_KINDS`) are read first, and each factor
is an aggregate over its own indexed range of the window, limited to those sites:

- ``denied_attempt``: ``fill_refused`` events at the site (``events_kind_idx``) — one per
  attempt, where ``fill_denials_daily`` counts an attempt once per reason;
- ``overfill``: fills judged ``overfill`` at the station (``fills_station_idx``);
- ``overstock_day``: the city days covered by the site's ``overstock`` alerts, first to
  last observation, within the window;
- ``open_alert``: the site's alerts not resolved, however old (``alerts_state_idx``);
- ``overdue_cylinder``: distinct cylinders handled at the site (the domain's
  ``HANDLING_KINDS``) on a city day after their next inspection date — read from the
  cylinders overdue today (``cylinders_next_inspection_idx``), then only their events of
  the window (``events_cylinder_idx`` probed with the array of their ids: a join would hash
  the whole month's trajectory, a million rows per 200,000 cylinders, for a few percent of
  them); a cylinder inspected since is not counted;
- ``complaint``: complaints filed in the window, not dismissed, charged to the station that
  last filled the cylinder before the complaint and to the site that last handed it on
  (one each per site).

The ranking wraps those facts (:func:`ranked`): the score is ``Σ weight × least(count,
cap)`` in ``numeric`` with the weights and caps of :func:`server.domain.site_risk.score_terms`,
the same terms the domain adds, so the SQL's order and the domain's agree (a property test
checks); sites scoring 0 are left out; ties go by the site's code in byte order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from server.domain.events import EventKind
from server.domain.filling import FillAssessment
from server.domain.site_risk import (
    COMPLAINT_DISMISSED,
    COMPLAINT_FILL_KIND,
    COMPLAINT_HANDOVER_KINDS,
    HANDLING_KINDS,
    SITE_KINDS,
    score_terms,
)
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Risk

__all__ = ["SITE_COLUMNS", "Window", "facts", "ranked"]


@dataclass(frozen=True, slots=True)
class Window:
    """The days whose facts count: first to last city day, as [start, end) instants."""

    zone: str
    first: dt.date
    last: dt.date
    start: dt.datetime
    end: dt.datetime


SITE_COLUMNS: Final[tuple[str, ...]] = (
    "site_id",
    "code",
    "name",
    "kind",
    "district_code",
    "district_name",
    "company_id",
    "company_code",
    "company_name",
    "address",
    "lat",
    "lon",
)
"""What each row says of its site, before the factors' counts."""


def facts(p: Principal, w: Window, q: Sql, district: str | None = None) -> str:
    """A SELECT of one row per site in *p*'s scope (and *district*, if given) with
    :data:`SITE_COLUMNS` and one count per factor (named as the factor)."""
    where = [f"s.kind = ANY({q.add(list(SITE_KINDS))}::text[])", scope_where(p, "sites", "s", q)]
    if district:
        where.append(f"s.district_code = {q.add(district)}")
    zone = q.add(w.zone)
    first, last = q.add(w.first), q.add(w.last)
    start, end = q.add(w.start), q.add(w.end)
    handling = q.add(list(HANDLING_KINDS))
    fill_kind = q.add(COMPLAINT_FILL_KIND)
    handover = q.add(list(COMPLAINT_HANDOVER_KINDS))
    dismissed = q.add(COMPLAINT_DISMISSED)
    refused = q.add(EventKind.fill_refused.value)
    overfilled = q.add(FillAssessment.OVERFILL.value)
    return f"""
WITH s AS MATERIALIZED (
    SELECT s.id, s.code, s.name, s.kind, s.district_code, s.company_id, s.address, s.lat, s.lon
      FROM sites s WHERE {" AND ".join(where)}
), denied AS (
    SELECT e.site_id, count(*) AS n FROM events e
     WHERE e.kind = {refused} AND e.ts >= {start} AND e.ts < {end}
       AND e.site_id IN (SELECT id FROM s)
     GROUP BY e.site_id
), overfill AS (
    SELECT f.station_id AS site_id, count(*) AS n FROM fills f
     WHERE f.assessment = {overfilled} AND f.ts >= {start} AND f.ts < {end}
       AND f.station_id IN (SELECT id FROM s)
     GROUP BY f.station_id
), overstock AS (
    SELECT a.site_id, count(DISTINCT g.day) AS n FROM alerts a
     CROSS JOIN LATERAL (
           SELECT d::date AS day
             FROM generate_series(greatest((a.first_at AT TIME ZONE {zone})::date, {first}::date),
                                  least((a.last_at AT TIME ZONE {zone})::date, {last}::date),
                                  interval '1 day') AS d) g
     WHERE a.kind = 'overstock' AND a.last_at >= {start} AND a.first_at < {end}
       AND a.site_id IN (SELECT id FROM s)
     GROUP BY a.site_id
), open_alerts AS (
    SELECT a.site_id, count(*) AS n FROM alerts a
     WHERE a.state <> 'resolved' AND a.site_id IN (SELECT id FROM s)
     GROUP BY a.site_id
), overdue_now AS MATERIALIZED (
    SELECT c.id, c.next_inspection_date FROM cylinders c
     WHERE c.next_inspection_date < {last}::date
), overdue AS (
    SELECT e.site_id, count(DISTINCT e.cylinder_id) AS n
      FROM events e JOIN overdue_now c ON c.id = e.cylinder_id
     WHERE e.cylinder_id = ANY(ARRAY(SELECT id FROM overdue_now))
       AND e.ts >= {start} AND e.ts < {end}
       AND e.kind = ANY({handling}::text[]) AND e.site_id IN (SELECT id FROM s)
       AND c.next_inspection_date < (e.ts AT TIME ZONE {zone})::date
     GROUP BY e.site_id
), complained AS (
    SELECT k.id, k.cylinder_id, k.created_at FROM complaints k
     WHERE k.created_at >= {start} AND k.created_at < {end} AND k.cylinder_id IS NOT NULL
       AND k.outcome IS DISTINCT FROM {dismissed}
), complaint_sites AS (
    SELECT k.id, filled.site_id FROM complained k
     CROSS JOIN LATERAL (SELECT e.site_id FROM events e
                          WHERE e.cylinder_id = k.cylinder_id AND e.ts <= k.created_at
                            AND e.kind = {fill_kind} AND e.site_id IS NOT NULL
                          ORDER BY e.ts DESC LIMIT 1) filled
    UNION
    SELECT k.id, handed.site_id FROM complained k
     CROSS JOIN LATERAL (SELECT e.site_id FROM events e
                          WHERE e.cylinder_id = k.cylinder_id AND e.ts <= k.created_at
                            AND e.kind = ANY({handover}::text[]) AND e.site_id IS NOT NULL
                          ORDER BY e.ts DESC LIMIT 1) handed
), complaint AS (
    SELECT site_id, count(*) AS n FROM complaint_sites
     WHERE site_id IN (SELECT id FROM s) GROUP BY site_id
)
SELECT s.id AS site_id, s.code, s.name, s.kind, s.district_code, d.name AS district_name,
       s.company_id, co.code AS company_code, co.name AS company_name, s.address, s.lat, s.lon,
       coalesce(denied.n, 0)::int AS denied_attempt,
       coalesce(overfill.n, 0)::int AS overfill,
       coalesce(overstock.n, 0)::int AS overstock_day,
       coalesce(open_alerts.n, 0)::int AS open_alert,
       coalesce(overdue.n, 0)::int AS overdue_cylinder,
       coalesce(complaint.n, 0)::int AS complaint
  FROM s
  LEFT JOIN districts d ON d.code = s.district_code
  LEFT JOIN companies co ON co.id = s.company_id
  LEFT JOIN denied ON denied.site_id = s.id
  LEFT JOIN overfill ON overfill.site_id = s.id
  LEFT JOIN overstock ON overstock.site_id = s.id
  LEFT JOIN open_alerts ON open_alerts.site_id = s.id
  LEFT JOIN overdue ON overdue.site_id = s.id
  LEFT JOIN complaint ON complaint.site_id = s.id"""


def score_sql(alias: str, cfg: Risk, q: Sql) -> str:
    """``Σ weight × least(count, cap)`` over the factor columns of *alias*, in numeric."""
    terms = []
    for factor, weight, cap in score_terms(cfg):
        count = f"{alias}.{factor}" if cap is None else f"least({alias}.{factor}, {q.add(cap)})"
        terms.append(f"{q.add(weight)}::numeric * {count}")
    return " + ".join(terms)


def ranked(source: str, cfg: Risk, q: Sql, limit: int) -> str:
    """The sites of *source* (a SELECT with ``code`` and a column per factor) that score above
    0, highest first, ties by code: at most *limit* rows, each with ``score`` and ``ranked_of``
    (how many sites scored above 0 in all)."""
    return f"""
SELECT r.*, count(*) OVER () AS ranked_of FROM (
    SELECT f.*, ({score_sql("f", cfg, q)}) AS score FROM ({source}) f
) r
 WHERE r.score > 0
 ORDER BY r.score DESC, r.code COLLATE "C"
 LIMIT {q.add(limit)}"""
