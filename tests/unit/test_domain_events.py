"""Trajectory events and the EPCIS 2.0 / CBV mapping (DOMAIN.md "Trajectory events")."""

from __future__ import annotations

import pytest

from server.domain import (
    FILLING_BIZ_STEP,
    SCAN_ACTION_NAMES,
    SCAN_ACTIONS,
    EpcisMapping,
    EventKind,
    epcis_for,
)

# DOMAIN.md's table, written out again independently of the module's table.
EXPECTED = {
    EventKind.register: ("commissioning", "active"),
    EventKind.fill: ("urn:cylwatch:bizstep:filling", "active"),
    EventKind.fill_refused: ("inspecting", "non_conformant"),
    EventKind.dispatch: ("shipping", "in_transit"),
    EventKind.deliver: ("retail_selling", "retail_sold"),
    EventKind.return_: ("receiving", "returned"),
    EventKind.transfer: ("departing", "in_transit"),
    EventKind.receive: ("arriving", "active"),
    EventKind.inspection: ("inspecting", "conformant"),
    EventKind.scrap: ("decommissioning", "inactive"),
    EventKind.lost: (None, "stolen"),
    EventKind.status_change: (None, None),
    EventKind.update: (None, None),
}


def test_event_kind_values() -> None:
    assert [k.value for k in EventKind] == [
        "register",
        "fill",
        "fill_refused",
        "dispatch",
        "deliver",
        "return",
        "transfer",
        "receive",
        "inspection",
        "scrap",
        "lost",
        "status_change",
        "update",
    ]


def test_member_names() -> None:
    assert EventKind.return_.value == "return"
    assert EventKind("return") is EventKind.return_
    for kind in EventKind:
        assert kind.name == ("return_" if kind.value == "return" else kind.value)
    assert len(list(EventKind)) == len(EXPECTED)


@pytest.mark.parametrize("kind", list(EventKind))
def test_default_mapping(kind: EventKind) -> None:
    biz_step, disposition = EXPECTED[kind]
    assert epcis_for(kind) == EpcisMapping(biz_step, disposition)


def test_filling_step_is_our_own_uri() -> None:
    assert epcis_for(EventKind.fill).biz_step == FILLING_BIZ_STEP


def test_inspection_outcome() -> None:
    assert epcis_for(EventKind.inspection, conformant=True) == EpcisMapping(
        "inspecting", "conformant"
    )
    assert epcis_for(EventKind.inspection, conformant=False) == EpcisMapping(
        "inspecting", "non_conformant"
    )


def test_transfer_sides() -> None:
    assert epcis_for(EventKind.transfer) == EpcisMapping("departing", "in_transit")
    assert epcis_for(EventKind.transfer, arriving=True) == EpcisMapping("arriving", "active")
    assert epcis_for(EventKind.receive) == epcis_for(EventKind.transfer, arriving=True)


@pytest.mark.parametrize(
    "kind", [k for k in EventKind if k not in (EventKind.inspection, EventKind.transfer)]
)
def test_flags_ignored_where_they_do_not_apply(kind: EventKind) -> None:
    default = epcis_for(kind)
    assert epcis_for(kind, conformant=False) == default
    assert epcis_for(kind, arriving=True) == default
    assert epcis_for(kind, conformant=False, arriving=True) == default


def test_plain_string_kind() -> None:
    assert epcis_for(EventKind("deliver")) == EpcisMapping("retail_selling", "retail_sold")


def test_scan_actions() -> None:
    assert tuple(SCAN_ACTIONS) == SCAN_ACTION_NAMES
    for action, kind in SCAN_ACTIONS.items():
        assert kind.value == action
    assert SCAN_ACTIONS["return"] is EventKind.return_
    with pytest.raises(TypeError):
        SCAN_ACTIONS["fill"] = EventKind.fill  # type: ignore[index]
