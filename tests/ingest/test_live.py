"""The live payload builders (ingest/live.py) give the rows docs/WEBSOCKET.md "Channels" lists."""

from __future__ import annotations

import datetime as dt

from ingest.live import device_event, fill_event, position_event, trajectory_event
from server.kernel.events import Event

T = dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)


def test_fill_row_has_the_documented_keys_and_scope() -> None:
    e = fill_event(
        ts=T,
        tag="TAG-1",
        cylinder_id=7,
        gun_id="GUN-1",
        station_id=3,
        company_id=2,
        district="D1",
        net_kg=14.5,
        assessment="ok",
        result="completed",
    )
    assert e.channel == "fills"
    assert list(e.data) == [
        "ts",
        "tag",
        "cylinder_id",
        "gun_id",
        "station_id",
        "company_id",
        "district",
        "net_kg",
        "assessment",
        "result",
    ]
    assert e.data["ts"] == T.isoformat()
    assert (e.district, e.company_id, e.site_id, e.key) == ("D1", 2, 3, "cylinder:TAG-1")


def test_position_row_is_in_epoch_ms_and_coalesces_per_object() -> None:
    e = position_event(
        kind="vehicle",
        ident="VEH-1",
        ts=T,
        lat=31.2,
        lon=121.5,
        district=None,
        company_id=4,
        speed_kmh=30.0,
        heading=90.0,
    )
    assert e.channel == "positions"
    assert e.data == {
        "kind": "vehicle",
        "id": "VEH-1",
        "lat": 31.2,
        "lon": 121.5,
        "ts": int(T.timestamp() * 1000),
        "speed_kmh": 30.0,
        "heading": 90.0,
    }
    assert (e.key, e.lat, e.lon, e.company_id) == ("vehicle:VEH-1", 31.2, 121.5, 4)


def test_trajectory_row_carries_epcis_only_for_stored_event_kinds() -> None:
    def at_station(kind: str, details: dict[str, float] | None = None) -> Event:
        return trajectory_event(
            ts=T,
            kind=kind,
            tag="TAG-1",
            device_id="GUN-1",
            cylinder_id=7,
            site_id=3,
            company_id=2,
            district="D1",
            details=details,
        )

    fill = at_station("fill", {"net_kg": 14.5})
    assert fill.channel == "events" and fill.key == "cylinder:TAG-1"
    assert fill.data["biz_step"] is not None and fill.data["details"] == {"net_kg": 14.5}
    allowed = at_station("fill_authorized")  # shown live, but no trajectory event of its own
    assert allowed.data["biz_step"] is None and allowed.data["disposition"] is None
    assert allowed.data["details"] == {}


def test_device_row_has_the_documented_keys_and_scope() -> None:
    e = device_event(
        device_id="GUN-1",
        kind="gun",
        online=False,
        last_seen_at=T,
        site_id=3,
        company_id=2,
        district="D1",
    )
    assert e.channel == "devices"
    assert e.data == {
        "device_id": "GUN-1",
        "kind": "gun",
        "online": False,
        "last_seen_at": T.isoformat(),
        "site_id": 3,
        "company_id": 2,
    }
    assert (e.district, e.company_id, e.site_id, e.key) == ("D1", 2, 3, "device:GUN-1")
