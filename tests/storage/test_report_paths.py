"""The same fills and refused attempts give the same report on both storage paths: one
database with TimescaleDB hypertables, where the fills rollup is a continuous aggregate, and
one with native partitions, where it is a pair of materialized views (migrations 0220–0224,
README "Storage"), each refreshed as `cylwatch reports refresh` does.

Skipped on a server that does not preload TimescaleDB — CI's (it has no TimescaleDB): there
is no hypertable path to compare with; the native path's numbers are checked against the rows
written by tests/api/test_report_rollups.py and test_report_activity.py everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from server.api import report_activity_abnormal
from server.api.report_activity import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import rollups
from server.db.rollup_refresh import refresh
from server.kernel.principal import Principal
from tests.api.report_activity_city import DISTRICT, Mini, add_fill, add_refusal, mini_city
from tests.storage.databases import Migrated, migrated, timescaledb_usable

ADMIN = Principal(user_id=1, username="path-admin", role="admin")
SERVER_LOGIN = "cylwatch_test_login"
"""A login role in the app role, as tests/integration/test_app_role.py makes (roles are
cluster-wide: creating it tolerates another session doing the same)."""
PERIOD_DAYS = 45
"""The report period: more than a month back, so it spans a month boundary, the native
path's split (RECENT_DAYS) and the rolled-up and live halves."""

NAMES = frozenset({"code", "name", "company_code", "company_name"})
"""Columns naming the test's company, whose code differs between the two databases."""

# (days ago, hour, station, result, assessment, net kg)
FILLS = [
    (40, 9, 0, "completed", "ok", "14.50"),
    (33, 23, 1, "completed", "overfill", "15.80"),
    (20, 0, 0, "aborted", "overfill", "15.10"),
    (12, 12, 1, "completed", "underfill", "13.20"),
    (8, 7, 0, "completed", "ok", "14.40"),
    (3, 18, 1, "aborted", None, "2.00"),
    (1, 10, 0, "completed", "ok", "14.60"),
    (0, 0, 1, "completed", "ok", "14.55"),
]
REFUSALS = [(30, ["not_owner"]), (9, ["scrapped", "overdue_inspection"]), (0, ["unknown_tag"])]
REMOVED = (12, 12)
"""(days ago, hour) of the fill removed from the raw table after the first refresh."""
# stored after the first refresh, for days it already closed (a gun's buffered fill, an
# enterprise upload of old fills): counted from the next full refresh on both paths
LATE_FILLS = [(25, 14, 0, "completed", "overfill", "16.00"), (2, 8, 1, "completed", "ok", "14.50")]


async def _district(pool: asyncpg.Pool) -> None:
    ring = [[113.6, 34.7], [113.8, 34.7], [113.8, 34.9], [113.6, 34.9], [113.6, 34.7]]
    await pool.execute(
        "INSERT INTO districts (code, name, boundary) VALUES ($1, '金水区', $2)"
        " ON CONFLICT DO NOTHING",
        DISTRICT,
        {"type": "Polygon", "coordinates": [ring]},
    )


async def _write(m: Mini, pool: asyncpg.Pool, rows: list[Any]) -> None:
    for days_ago, hour, station, result, assessment, net in rows:
        await add_fill(pool, m, m.at(days_ago, hour), station, result, assessment, net)


def _without_names(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the company's code and name, which differ between the two databases."""
    return [{k: v for k, v in r.items() if k not in NAMES} for r in rows]


async def _bodies(db: Migrated, m: Mini) -> list[Any]:
    period = {
        "from": (m.today - dt.timedelta(days=PERIOD_DAYS)).isoformat(),
        "company": m.company_code,
    }
    bodies = []
    for spec, extra in ((SPECS[0], {"group": "month"}), (report_activity_abnormal.SPEC, {})):
        ctx = build_context(db.pool, db.settings, ADMIN, spec, period | extra)
        body = await compute_report(ctx, spec)
        bodies.append((spec.name, _without_names(body["rows"]), body["totals"], body["previous"]))
    return bodies


async def _as_server(db: Migrated) -> asyncpg.Connection:
    """A connection as the server makes it: a login role of ``[services] app_role``, which
    owns nothing (docs/SECURITY.md "Database roles") — not the continuous aggregate either."""
    admin = await asyncpg.connect(db.dsn)
    try:
        await admin.execute(
            f"""DO $$ BEGIN
                    CREATE ROLE {SERVER_LOGIN} LOGIN IN ROLE {db.settings.services.app_role};
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$"""
        )
    finally:
        await admin.close()
    return await asyncpg.connect(urlsplit(db.dsn)._replace(netloc=_netloc(db.dsn)).geturl())


def _netloc(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{SERVER_LOGIN}@{parts.hostname}:{parts.port or 5432}"


async def _reports(db: Migrated) -> tuple[str, list[Any], list[Any]]:
    """The rows written and refreshed (by the server's role), then changed on closed days:
    the storage mode, the reports before the next refresh (closed days as of the last one)
    and after it."""
    await _district(db.pool)
    m = await mini_city(db.pool, db.settings, "PATH")
    await _write(m, db.pool, FILLS)
    for days_ago, reasons in REFUSALS:
        await add_refusal(db.pool, m, m.at(days_ago), reasons)
    server = await _as_server(db)
    try:
        assert await refresh(server, db.settings, wait=True, full=True)
        days_ago, hour = REMOVED
        await db.pool.execute(
            "DELETE FROM fills WHERE company_id = $1 AND ts = $2",
            m.company_id,
            m.at(days_ago, hour),
        )
        await _write(m, db.pool, LATE_FILLS)
        before = await _bodies(db, m)
        assert await refresh(server, db.settings, wait=True, full=True)
    finally:
        await server.close()
    after = await _bodies(db, m)
    state = await rollups.watermark(db.pool)
    assert state is not None
    return state.mode, before, after


async def test_reports_agree_on_both_paths(settings: Any, pool: asyncpg.Pool) -> None:
    if not await timescaledb_usable(pool):
        pytest.skip(
            "this PostgreSQL does not preload TimescaleDB (CI has none): no hypertable path"
            " to compare the native one with"
        )
    async with migrated(settings, "auto") as hyper, migrated(settings, "off") as native:
        assert hyper.result.storage.hypertables and not native.result.storage.hypertables
        hyper_mode, hyper_before, hyper_after = await _reports(hyper)
        native_mode, native_before, native_after = await _reports(native)
    assert (hyper_mode, native_mode) == ("timescale", "native")
    assert hyper_before == native_before
    assert hyper_after == native_after
    # and the numbers are the rows': before the refresh the closed days as they were at the
    # last one (the removed fill still counted, the late ones not yet), after it as stored
    for (name, rows, totals, _), written in (
        (native_before[0], FILLS),
        (native_after[0], [f for f in FILLS if f[:2] != REMOVED] + LATE_FILLS),
    ):
        assert name == "fill-volume"
        assert totals["fills"] == len(written) == sum(r["fills"] for r in rows)
        assert totals["overfill"] == sum(f[4] == "overfill" for f in written)
