"""An acknowledge or resolve goes out live: every other open screen sees the new state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.db.alerts import raise_alert
from server.kernel.appkeys import BUS
from server.kernel.events import Event
from tests.conftest import World, login


async def test_ack_and_resolve_are_published_on_the_bus(
    client: Any, app: Any, pool: Any, world: World
) -> None:
    async with pool.acquire() as conn:
        alert, created = await raise_alert(
            conn,
            kind="leak",
            severity="critical",
            subject_type="cylinder",
            subject_id="TAG-LIVE-ACK",
            at=dt.datetime.now(dt.UTC),
            company_id=world.companies["A"],
            district_code="410105",
        )
    assert created
    seen: list[Event] = []
    app[BUS].listen("alerts", seen.append)
    headers = await login(client, "t_officer")
    r = await client.post(
        f"/api/v1/alerts/{alert['id']}/ack", json={"note": "on my way"}, headers=headers
    )
    assert r.status == 200, await r.text()
    r = await client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={}, headers=headers)
    assert r.status == 200, await r.text()
    states = [e.data["state"] for e in seen if e.data["id"] == alert["id"]]
    assert states == ["acknowledged", "resolved"]
    assert all(e.district == "410105" and e.company_id == world.companies["A"] for e in seen)
