"""The domain package as a whole: vocabularies, exports, purity, no hard-coded numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec

import server.domain as domain
from server.domain import (
    CUSTOMER_KINDS,
    CYLINDER_STATUSES,
    DEVICE_KINDS,
    IMPORT_STATUSES,
    IN_SERVICE,
    NOT_IN_SERVICE_STATUSES,
    ROLES,
    SCRAPPED,
    SITE_KINDS,
    Reason,
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
    # DESIGN §9's five, plus not_activated so that every exported record imports back
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


def test_no_numeric_literals_in_domain_code() -> None:
    """Every number comes from the settings (DOMAIN.md); only 0/1 arithmetic is allowed."""
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, int | float | complex)
                and not isinstance(node.value, bool)
                and node.value not in (0, 1)
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_domain_is_pure() -> None:
    """DESIGN §2: no I/O, no asyncio, no database in the domain."""
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
