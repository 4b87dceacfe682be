"""The domain package as a whole: vocabularies, exports, purity, no hard-coded numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest

import server.domain as domain
from server.domain import (
    ALERT_KINDS,
    CUSTOMER_KINDS,
    CYLINDER_STATUSES,
    DEVICE_KINDS,
    FILL_RESULTS,
    IMPORT_STATUSES,
    IN_SERVICE,
    LIVE_CHANNELS,
    NOT_IN_SERVICE_STATUSES,
    POST_CHECK_ITEMS,
    PRE_CHECK_ITEMS,
    ROLES,
    SCAN_ACTION_NAMES,
    SCRAPPED,
    SEVERITIES,
    SITE_KINDS,
    Reason,
    is_district_code,
)
from server.kernel.settings import Alerts, GunCodes

DOMAIN_DIR = Path(domain.__file__).resolve().parent


def test_vocabularies() -> None:
    assert CYLINDER_STATUSES == (
        "in_service",
        "in_inspection",
        "scrapped",
        "lost",
        "suspended",
        "not_activated",
    )
    # docs/ARCHITECTURE.md §9's five, plus not_activated so that every exported record imports back
    assert IMPORT_STATUSES[:5] == ("in_service", "in_inspection", "scrapped", "lost", "suspended")
    assert set(IMPORT_STATUSES) == set(CYLINDER_STATUSES)
    assert SITE_KINDS == ("filling_station", "store", "warehouse", "inspection_agency")
    assert DEVICE_KINDS == ("gun", "valve", "handheld", "vehicle")
    assert CUSTOMER_KINDS == ("resident", "restaurant", "industrial")
    assert ROLES == (
        "admin",
        "regulator",
        "officer",
        "company_admin",
        "station_operator",
        "inspector",
    )


def test_payload_and_alert_vocabularies() -> None:
    assert SCAN_ACTION_NAMES == ("dispatch", "deliver", "return", "transfer", "receive")
    assert FILL_RESULTS == ("completed", "aborted")
    # least to most grave: the alerts.severity CHECK, and the order pages reverse
    assert SEVERITIES == ("info", "warning", "critical")
    assert LIVE_CHANNELS == ("positions", "alerts", "fills", "kpis", "events", "devices")


def test_alert_kinds_are_the_design_list_with_a_severity_and_subject() -> None:
    # docs/ARCHITECTURE.md §4, then DOMAIN.md "Circulation checks"
    assert tuple(ALERT_KINDS) == (
        "fill_denied",
        "overfill",
        "underfill",
        "repeat_fill",
        "unknown_tag",
        "overstock",
        "leak",
        "device_offline",
        "out_of_region",
        "licence_expiring",
        "circulation_violation",
        "suspected_illegal_fill",
        "foreign_cylinder",
        "cloned_tag",
    )
    for kind in ALERT_KINDS.values():
        assert kind.severity in SEVERITIES
        assert kind.subject_type in ("cylinder", "site", "device", "company")
        assert kind.why
    # present conditions only: a late (buffered) message must not raise them for the past
    assert {k for k, v in ALERT_KINDS.items() if v.live_only} == {"overstock", "device_offline"}


def test_fill_check_items_follow_domain_md() -> None:
    """DOMAIN.md "Filling checks": six pre-fill items, four post-fill items, no overlap."""
    assert len(PRE_CHECK_ITEMS) == len(set(PRE_CHECK_ITEMS)) == 6
    assert len(POST_CHECK_ITEMS) == len(set(POST_CHECK_ITEMS)) == 4
    assert not set(PRE_CHECK_ITEMS) & set(POST_CHECK_ITEMS)
    assert "own_cylinder" in PRE_CHECK_ITEMS
    assert "no_leak_at_valve" in POST_CHECK_ITEMS


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("410105", True),
        ("000000", True),
        ("41010", False),
        ("4101050", False),
        ("41010a", False),
        ("", False),
        ("410105\n", False),
        ("４１０１０５", False),  # full-width digits are not a code
    ],
)
def test_district_codes_are_six_ascii_digits(code: str, valid: bool) -> None:
    assert is_district_code(code) is valid


def test_statuses_partition() -> None:
    assert set(IMPORT_STATUSES) <= set(CYLINDER_STATUSES)
    assert {IN_SERVICE, SCRAPPED, *NOT_IN_SERVICE_STATUSES} == set(CYLINDER_STATUSES)
    assert len(NOT_IN_SERVICE_STATUSES) + 2 == len(CYLINDER_STATUSES)


def test_reasons_match_gun_code_settings() -> None:
    assert {r.value for r in Reason} == {f.name for f in msgspec.structs.fields(GunCodes)} - {
        "allow"
    }


def test_every_site_kind_has_storage_rule() -> None:
    storage_fields = {
        f.name for f in msgspec.structs.fields(Alerts) if f.name.startswith("default_")
    }
    assert storage_fields == {
        f"default_storage_{k}" for k in SITE_KINDS if k != "inspection_agency"
    }


def test_all_exports_resolve() -> None:
    for name in domain.__all__:
        assert hasattr(domain, name), name
    assert len(set(domain.__all__)) == len(domain.__all__)


def _sources() -> list[Path]:
    files = sorted(DOMAIN_DIR.glob("*.py"))
    assert len(files) >= 7
    return files


def _named_constants(tree: ast.Module) -> set[int]:
    """ids of the literal nodes that are a module-level ``NAME: Final = <number>`` (a named
    constant of a format or a field's bound, such as a ticket's length, which says why it has
    its value where it is defined), allowed beside the settings."""
    allowed: set[int] = set()
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.AnnAssign)
            and stmt.value is not None
            and "Final" in ast.unparse(stmt.annotation)
        ):
            allowed |= {id(n) for n in ast.walk(stmt.value) if isinstance(n, ast.Constant)}
    return allowed


def test_no_numeric_literals_in_domain_code() -> None:
    """Every number a rule uses comes from the settings (DOMAIN.md); in the code only 0/1
    arithmetic, and named ``Final`` constants at module level for formats and field bounds."""
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        named = _named_constants(tree)
        for node in ast.walk(tree):
            if id(node) in named:
                continue
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, int | float | complex)
                and not isinstance(node.value, bool)
                and node.value not in (0, 1)
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_domain_is_pure() -> None:
    """docs/ARCHITECTURE.md §2: no I/O, no asyncio, no database in the domain."""
    forbidden = {
        "asyncio",
        "asyncpg",
        "aiohttp",
        "redis",
        "aiomqtt",
        "paho",
        "socket",
        "os",
        "subprocess",
        "server.db",
        "time",
    }
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (
                    f"{path.name} imports {name}"
                )
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in ("now", "today", "utcnow"), (
                    f"{path.name}:{node.lineno} reads the clock; take it as a parameter"
                )
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("open", "print", "input"), path.name
