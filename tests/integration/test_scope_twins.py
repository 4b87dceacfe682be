"""Role scope in SQL (server.kernel.scope) and for live rows (realtime.scope) admit the same rows
(docs/ARCHITECTURE.md §7).

REST lists, exports and the wall's aggregates scope in SQL; websocket rows and the live KPI
cells are scoped in Python. For random principals of every role and random rows (district,
company, site — any of them missing), PostgreSQL evaluating ``scope_where`` and
``realtime.scope.visible`` must agree row by row, for every entity a live channel or a KPI
follows. A device's live event carries the district of its site (as ingest publishes it),
which is what the SQL looks up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from realtime.kpis import KPI_ENTITIES
from realtime.scope import CHANNEL_ENTITY, LiveFilter, compile_predicate, rule_for, visible
from server.domain.statuses import ROLES
from server.kernel.events import Event
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

DISTRICTS = ("410102", "410103", "410105")
COMPANIES = (1, 2, 3)
SITE_DISTRICT = {10: "410102", 11: "410103", 12: "410105", 13: None}
"""The sites rows may be at, and each site's district (13 has none on record)."""
LIVE_ENTITIES = tuple(sorted(set(CHANNEL_ENTITY.values()) | set(KPI_ENTITIES)))

Row = tuple[str | None, int | None, int | None]

principals = st.builds(
    lambda role, company, site, districts: Principal(
        user_id=1,
        username="p",
        role=role,
        company_id=company,
        site_id=site,
        districts=tuple(sorted(districts)),
    ),
    st.sampled_from(ROLES),
    st.sampled_from((*COMPANIES, None)),
    st.sampled_from((*SITE_DISTRICT, None)),
    st.frozensets(st.sampled_from(DISTRICTS)),
)
rows = st.lists(
    st.tuples(
        st.sampled_from((*DISTRICTS, None)),
        st.sampled_from((*COMPANIES, None)),
        st.sampled_from((*SITE_DISTRICT, None)),
    ),
    min_size=1,
    max_size=30,
)


@pytest.fixture(scope="module")
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own: its temporary ``sites`` shadows the real table for the
    device subquery, and must never be seen by a pooled connection."""
    c = await asyncpg.connect(database)
    await c.execute(
        "CREATE TEMP TABLE sites AS SELECT * FROM unnest($1::bigint[], $2::text[])"
        " AS s(id, district_code)",
        list(SITE_DISTRICT),
        list(SITE_DISTRICT.values()),
    )
    yield c
    await c.close()


def _event(entity: str, row: Row) -> Event:
    district, company, site = row
    if entity == "devices":
        district = SITE_DISTRICT.get(site) if site is not None else None
    return Event(entity, {}, district=district, company_id=company, site_id=site)


async def _sql_admits(
    conn: asyncpg.Connection, p: Principal, entity: str, rs: list[Row]
) -> list[bool]:
    """``scope_where`` evaluated by PostgreSQL for each row, every column name an entity
    may use bound to the row's district, company or site."""
    q = Sql(
        [r[0] for r in rs],
        [r[1] for r in rs],
        [r[2] for r in rs],
    )
    where = scope_where(p, entity, "r", q)
    got = await conn.fetch(
        f"""SELECT r.i, coalesce({where}, false) AS ok
              FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY
                   AS u(district_code, company_id, site_id, i),
                   LATERAL (SELECT u.i, u.district_code, u.company_id,
                                   u.company_id AS owner_company_id,
                                   u.site_id, u.site_id AS station_id) r
             ORDER BY r.i""",
        *q.params,
    )
    return [bool(g["ok"]) for g in got]


@given(p=principals, rs=rows)
@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_live_scope_admits_what_sql_admits(
    conn: asyncpg.Connection, p: Principal, rs: list[Row]
) -> None:
    for entity in LIVE_ENTITIES:
        rule = rule_for(p, entity)
        test = compile_predicate(rule, LiveFilter())
        live = [visible(rule, _event(entity, r)) for r in rs]
        compiled = [test is None or test(_event(entity, r)) for r in rs]
        sql = await _sql_admits(conn, p, entity, rs)
        assert live == compiled == sql, (p, entity, rs, rule)


def test_every_live_entity_is_covered() -> None:
    assert set(LIVE_ENTITIES) >= {"cylinders", "fills", "events", "alerts", "devices"}
