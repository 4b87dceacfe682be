"""Role scope and client filters for live rows: the same rules as `server.kernel.scope`, in Python.

REST handlers scope in SQL (`server.kernel.scope.scope_where`). Live rows never touch the
database, so each `Event` carries its scope keys (district, company_id, site_id) and this
module decides with the same table (docs/ARCHITECTURE.md §7, the docstring of `server/scope.py`):

| channel   | entity    | all-seeing | district roles | company_admin | station_op.   | inspector |
|-----------|-----------|------------|----------------|---------------|---------------|-----------|
| alerts    | alerts    | all        | Event.district | company       | Event.site_id | none      |
| fills     | fills     | all        | Event.district | company       | Event.site_id | none      |
| positions | positions | all        | Event.district | company       | company       | none      |
| events    | events    | all        | Event.district | company       | company       | all       |
| devices   | devices   | all        | Event.district | company       | Event.site_id | none      |

("all-seeing": admins and regulators without districts.)

The ``inbox`` channel has no entity: its rows are a user's own (a message or notice for
them, a receipt of theirs), each naming the users it is for, and every role has an inbox.
Its rule is :data:`RECIPIENTS`: the hub hands a row to the named users' subscriptions only
(`realtime.hub.InboxGroup`), never by district or company.

A scope is reduced to a hashable `Rule` so that subscriptions with the same rule and the
same filter share one bus listener and one serialization (`realtime.hub.Group`). A row
missing the key a rule needs (no district for a district officer) is not shown: unknown
scope means "not yours", never "everyone's".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from server.kernel.events import Event
from server.kernel.principal import Principal
from server.kernel.scope import can_read

CHANNEL_ENTITY: Final = {
    "alerts": "alerts",
    "fills": "fills",
    "positions": "positions",
    "events": "events",
    "devices": "devices",
}
"""The `server.kernel.scope` entity whose rule a live channel follows."""

Kind = Literal["all", "none", "district", "company", "site", "recipients"]
Predicate = Callable[[Event], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may see a row: everyone, no one, or rows whose district/company/site matches."""

    kind: Kind
    values: frozenset[str] | frozenset[int] = frozenset()


ALL: Final = Rule("all")
NONE: Final = Rule("none")
RECIPIENTS: Final = Rule("recipients")
"""Rows for the users they name (the ``inbox`` channel); as a predicate it admits nothing:
only the inbox group, which routes by user, delivers such rows."""


def rule_for(p: Principal, entity: str) -> Rule:
    """The live twin of `server.kernel.scope.scope_where` for one principal and entity."""
    if not can_read(p, entity):
        return NONE
    role = p.role
    if role == "admin":
        return ALL
    if role in ("regulator", "officer"):
        if entity == "companies" or p.city_wide:
            return ALL
        return Rule("district", frozenset(p.districts))
    if role == "inspector":
        return ALL
    if role == "company_admin" and p.company_id is not None:
        return Rule("company", frozenset({p.company_id}))
    if role == "station_operator":
        if entity in ("fills", "alerts", "devices") and p.site_id is not None:
            return Rule("site", frozenset({p.site_id}))
        if entity not in ("fills", "alerts", "devices") and p.company_id is not None:
            return Rule("company", frozenset({p.company_id}))
    return NONE


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """A validated client filter; hashable so that equal filters share a group."""

    bbox: tuple[float, float, float, float] | None = None
    district: str | None = None
    company_id: int | None = None


def rule_test(rule: Rule) -> Predicate | None:
    """The rule as a predicate; None means every row passes (no call at all)."""
    if rule.kind == "all":
        return None
    if rule.kind in ("none", "recipients"):
        return lambda e: False
    values = rule.values
    if rule.kind == "district":
        return lambda e: e.district in values
    if rule.kind == "company":
        return lambda e: e.company_id in values
    return lambda e: e.site_id in values


def compile_predicate(rule: Rule, flt: LiveFilter) -> Predicate | None:
    """One closure testing scope and filter; None when everything passes.

    Built once per group, evaluated once per event per group (not per client).
    """
    tests: list[Predicate] = []
    scope = rule_test(rule)
    if scope is not None:
        tests.append(scope)
    if flt.district is not None:
        district = flt.district
        tests.append(lambda e: e.district == district)
    if flt.company_id is not None:
        company = flt.company_id
        tests.append(lambda e: e.company_id == company)
    if flt.bbox is not None:
        w, s, e_, n = flt.bbox

        def in_bbox(ev: Event) -> bool:
            return (
                ev.lat is not None and ev.lon is not None and s <= ev.lat <= n and w <= ev.lon <= e_
            )

        tests.append(in_bbox)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    all_tests = tuple(tests)
    return lambda ev: all(t(ev) for t in all_tests)


def visible(rule: Rule, event: Event) -> bool:
    test = rule_test(rule)
    return test is None or test(event)
