"""The kpis channel: figures computed from dates with the settings' thresholds, per scope,
refreshed every kpi_interval_s, one computation per tick for every scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from realtime.keys import KPIS
from server.domain.dates import ComplianceStatus, compliance_status
from tests.realtime.conftest import realtime_settings


async def expected_counts(pool: Any, settings: Any, company_id: int | None) -> dict[str, int]:
    """The same figures the slow way: compliance_status() on every row."""
    rows = await pool.fetch(
        "SELECT status, next_inspection_date, scrap_date FROM cylinders"
        " WHERE $1::bigint IS NULL OR owner_company_id = $1",
        company_id,
    )
    from realtime.kpis import local_midnight

    today = local_midnight(settings.alerts).date()
    out = {"registered": len(rows), "in_service": sum(r["status"] == "in_service" for r in rows)}
    for status in (
        ComplianceStatus.SCRAPPED,
        ComplianceStatus.OVERDUE,
        ComplianceStatus.SCRAP_DUE,
        ComplianceStatus.INSPECTION_DUE,
    ):
        out[status.value] = sum(
            compliance_status(
                r["status"], r["next_inspection_date"], r["scrap_date"], today, settings.dates
            )
            == status
            for r in rows
        )
    return out


async def test_kpis_snapshot_scope_and_ticks(
    make_client: Any, settings: Any, pool: Any, world: Any, connect: Any
) -> None:
    fast = realtime_settings(settings, kpi_interval_s=0.3)
    client = await make_client(fast)
    admin = await connect("t_admin", client)
    company_b = await connect("t_company_b", client)
    inspector = await connect("t_inspector", client)
    figures = {}
    for name, ws in (("admin", admin), ("b", company_b), ("inspector", inspector)):
        sub = await ws.send(type="subscribe", channel="kpis")
        assert (await ws.recv())["success"] is True
        snap = await ws.recv()
        assert snap["id"] == sub and snap["snapshot"] is True and len(snap["data"]) == 1
        figures[name] = snap["data"][0]
    for name, company in (("admin", None), ("b", world.companies["B"])):
        expected = await expected_counts(pool, settings, company)
        assert {k: figures[name][k] for k in expected} == expected, name
    assert figures["b"]["registered"] < figures["admin"]["registered"]
    assert figures["inspector"]["open_alerts"] is None  # inspectors may not read alerts
    assert figures["inspector"]["registered"] == figures["admin"]["registered"]
    for key in ("fills_today", "denials_today", "open_alerts", "critical_alerts", "as_of"):
        assert key in figures["admin"]

    kpis = client.app[KPIS]
    ticks = kpis.ticks
    tick = await admin.recv(wait_s=3)
    assert tick["channel"] == "kpis" and "snapshot" not in tick
    await company_b.recv(wait_s=3)
    assert kpis.ticks >= ticks + 1
    # 3 scopes, 3 groups, but the cells are read once per tick
    assert len(client.app[KPIS].hub.kpi_groups()) == 3
    assert dt.datetime.fromisoformat(tick["data"][0]["as_of"])
