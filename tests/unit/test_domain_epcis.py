"""server.domain.epcis: one stored event → its EPCIS 2.0 ObjectEvents (pure, no services)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.domain.epcis import (
    StoredEvent,
    cylinder_epc,
    event_id,
    object_events,
    site_uri,
    zone_offset,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2025, 3, 1, 0, 12, 30, 250000, tzinfo=dt.UTC)


def stored(kind: str, **over: Any) -> StoredEvent:
    values: dict[str, Any] = {
        "msg_id": "m-1",
        "ts": AT,
        "received_at": AT + dt.timedelta(seconds=1),
        "kind": kind,
        "tag": "E280-1",
        "site_code": "STA-1",
        "disposition": None,
        "details": {},
    }
    values.update(over)
    return StoredEvent(**values)


def test_identifiers_are_uris_and_stable() -> None:
    assert cylinder_epc("E2801160") == "urn:cylwatch:cylinder:E2801160"
    assert cylinder_epc("A B/中") == "urn:cylwatch:cylinder:A%20B%2F%E4%B8%AD"
    assert site_uri("ZZ:01") == "urn:cylwatch:site:ZZ%3A01"
    same_moment = AT.astimezone(SHANGHAI)
    assert event_id("m-1", AT) == event_id("m-1", same_moment)
    assert event_id("m-1", AT) != event_id("m-2", AT)
    assert event_id("m-1", AT) != event_id("m-1", AT + dt.timedelta(microseconds=1))
    assert event_id("m-1", AT) != event_id("m-1", AT, "destroying")


@pytest.mark.parametrize(
    ("zone", "month", "offset"),
    [
        ("Asia/Shanghai", 1, "+08:00"),
        ("America/New_York", 1, "-05:00"),
        ("America/New_York", 7, "-04:00"),
        ("Asia/Kolkata", 1, "+05:30"),
        ("UTC", 1, "+00:00"),
    ],
)
def test_zone_offset(zone: str, month: int, offset: str) -> None:
    assert zone_offset(dt.datetime(2025, month, 1, tzinfo=ZoneInfo(zone))) == offset


def test_times_are_the_citys_with_offset() -> None:
    (event,) = object_events(stored("dispatch"), SHANGHAI)
    assert event["eventTime"] == "2025-03-01T08:12:30.250000+08:00"
    assert event["recordTime"] == "2025-03-01T08:12:31.250000+08:00"
    assert event["eventTimeZoneOffset"] == "+08:00"
    (no_record,) = object_events(stored("dispatch", received_at=None), SHANGHAI)
    assert "recordTime" not in no_record


def test_inspection_outcome_from_details_or_stored_disposition() -> None:
    def disposition(**over: Any) -> str:
        (event,) = object_events(stored("inspection", **over), SHANGHAI)
        return str(event["disposition"])

    assert disposition(details={"result": "pass"}) == "conformant"
    assert disposition(details={"result": "fail"}) == "non_conformant"
    assert disposition(details={"result": "scrap"}) == "non_conformant"
    assert disposition(disposition="non_conformant") == "non_conformant"
    assert disposition(disposition="conformant") == "conformant"


def test_scrap_is_two_deletes_with_distinct_ids() -> None:
    first, second = object_events(stored("scrap"), SHANGHAI)
    assert (first["bizStep"], first["disposition"], first["action"]) == (
        "decommissioning",
        "inactive",
        "DELETE",
    )
    assert (second["bizStep"], second["disposition"], second["action"]) == (
        "destroying",
        "destroyed",
        "DELETE",
    )
    assert first["eventID"] == event_id("m-1", AT)
    assert second["eventID"] == event_id("m-1", AT, "destroying")


def test_fill_weights_only_when_numbers() -> None:
    (event,) = object_events(
        stored("fill", details={"net_kg": 14, "tare_kg": None, "gross_kg": True}), SHANGHAI
    )
    (element,) = event["sensorElementList"]
    assert element["sensorReport"] == [
        {"type": "Mass", "value": 14.0, "uom": "KGM", "cylwatch:weighing": "net"}
    ]
    (bare,) = object_events(stored("fill"), SHANGHAI)
    assert "sensorElementList" not in bare


@pytest.mark.parametrize("kind", ["update", "status_change", "teleport", ""])
def test_no_epcis_meaning_yields_nothing(kind: str) -> None:
    assert object_events(stored(kind), SHANGHAI) == []


def test_untagged_yields_nothing() -> None:
    assert object_events(stored("fill", tag=None), SHANGHAI) == []


def test_details_never_leak() -> None:
    details = {"customer": "CUST-9", "operator": "张三", "lat": 34.7, "reasons": ["x"]}
    (event,) = object_events(stored("deliver", details=details), SHANGHAI)
    text = repr(event)
    for secret in ("CUST-9", "张三", "34.7", "reasons"):
        assert secret not in text
    assert "bizLocation" not in event  # sold: the customer's home is never named
