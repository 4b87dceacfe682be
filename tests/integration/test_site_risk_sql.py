"""The inspection list's SQL ranking (server.db.site_risk.ranked) agrees with the domain's
(server.domain.site_risk.rank) on PostgreSQL: random weights (decimals, zeros), random caps,
random counts per factor, codes that sort differently under a locale's collation — the same
sites, in the same order, with the same scores, and the same count of sites above 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.db.site_risk import ranked
from server.domain.site_risk import FACTORS, rank
from server.kernel.scope import Sql
from server.kernel.settings import Risk, load_settings

COUNT_MAX = 60
"""Counts drawn per factor: around the default caps (20, 30) and the drawn ones."""

weights = st.one_of(
    st.just(0.0),
    st.integers(0, 100_000).map(lambda n: n / 100),  # two decimals, up to 1000
)
caps = st.one_of(st.none(), st.integers(1, COUNT_MAX))
codes = st.text(alphabet="ABab-_.09 中区", min_size=1, max_size=5)


@st.composite
def configs(draw: st.DrawFn) -> Risk:
    base = load_settings(environ={}).risk
    drawn_caps = {f: c for f in FACTORS if (c := draw(caps)) is not None}
    return msgspec.structs.replace(
        base, weights={f: draw(weights) for f in FACTORS}, caps=drawn_caps
    )


sites = st.lists(
    st.tuples(codes, st.fixed_dictionaries({f: st.integers(0, COUNT_MAX) for f in FACTORS})),
    max_size=25,
    unique_by=lambda s: s[0],
)


@pytest.fixture(scope="module")
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    yield c
    await c.close()


@given(cfg=configs(), rows=sites, limit=st.integers(1, 30))
@hsettings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_sql_ranks_like_the_domain(
    conn: asyncpg.Connection, cfg: Risk, rows: list[tuple[str, dict[str, int]]], limit: int
) -> None:
    ids = list(range(1, len(rows) + 1))
    q = Sql(ids, [code for code, _ in rows], *([c[f] for _, c in rows] for f in FACTORS))
    columns = ", ".join(FACTORS)
    arrays = ", ".join(f"${i}::int[]" for i in range(3, 3 + len(FACTORS)))
    source = (
        f"SELECT * FROM unnest($1::bigint[], $2::text[], {arrays}) AS s(site_id, code, {columns})"
    )
    got = await conn.fetch(ranked(source, cfg, q, limit), *q.params)
    expected = rank([(i, code, c) for i, (code, c) in zip(ids, rows, strict=True)], cfg)
    assert [(r["site_id"], r["score"]) for r in got] == [(s.key, s.score) for s in expected[:limit]]
    assert all(isinstance(r["score"], Decimal) for r in got)
    assert {r["ranked_of"] for r in got} <= {len(expected)}
