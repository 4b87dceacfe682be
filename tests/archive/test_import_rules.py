"""The import obeys the edit rules (issue 12 item 4): a file is no side door.

A row that would change an existing cylinder is judged like ``PATCH /api/v1/cylinders/{id}``
by the same person (``server.domain.record_changes``): for each role, a file trying each
change that role may not make is refused row by row and changes nothing; a change the role
may make is stored and records the trajectory event a PATCH records; and, for random changes
by every role, PATCH and the import agree on what is allowed, name the same field when they
refuse, and leave the same record and events behind when they allow.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.archive import ARCHIVE_COLUMNS
from server.domain.statuses import CYLINDER_STATUSES
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from tests.archive.conftest import csv_bytes, reasons, run_import, write_file
from tests.archive.test_api import auth
from tests.conftest import World

USERS = {"admin": "t_admin", "inspector": "t_inspector", "company_admin": "t_company_a"}
COMPARED = [c for c in ARCHIVE_COLUMNS if c not in ("tag", "stamp", "barcode")]
"""Columns two twin cylinders must agree on after the same change (their codes differ)."""


@dataclass
class Cast:
    """The world's people, as the import acts for them and as they log in for PATCH."""

    world: World
    today: dt.date

    def principal(self, role: str) -> Principal:
        user = USERS[role]
        return Principal(
            user_id=self.world.users[user],
            username=user,
            role=role,
            company_id=self.world.companies["A"] if role == "company_admin" else None,
            site_id=self.world.sites["INS-1"] if role == "inspector" else None,
        )

    @property
    def made(self) -> dt.date:
        return self.today.replace(year=self.today.year - 2, day=1)


@pytest.fixture(scope="module")
def cast(world: World, settings: Settings) -> Cast:
    from server.kernel.clock import city_today

    return Cast(world, city_today(settings))


async def new_cylinder(pool: asyncpg.Pool, cast: Cast, status: str = "in_service") -> str:
    """A cylinder of company A (TEST-A) with coherent dates; returns its tag."""
    tag = f"RULE-{secrets.token_hex(5).upper()}"
    made = cast.made
    await pool.execute(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
               medium, manufacturer, manufacture_date, next_inspection_date, scrap_date, status,
               district_code, location_site_id, registered_by_site_id, tag_voided)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, 'LPG', '测试压力容器厂', $5, $6, $7, $8,
                   '410105', $9, $10, $8 = 'scrapped')""",
        tag,
        f"ST-{tag}",
        f"BC-{tag}",
        cast.world.companies["A"],
        made,
        made.replace(year=made.year + 4),
        made.replace(year=made.year + 8),
        status,
        cast.world.sites["STA-A1"],
        cast.world.sites["INS-1"],
    )
    return tag


async def record(pool: asyncpg.Pool, tag: str) -> dict[str, Any]:
    """The cylinder as an archive row (the file's columns, the file's spelling)."""
    r = await pool.fetchrow(
        """SELECT c.*, co.code AS owner_code FROM cylinders c
             JOIN companies co ON co.id = c.owner_company_id WHERE c.tag = $1""",
        tag,
    )
    assert r is not None
    out: dict[str, Any] = {}
    for col in ARCHIVE_COLUMNS:
        v = r[col]
        out[col] = "" if v is None else v.isoformat() if isinstance(v, dt.date) else str(v)
    out["id"] = r["id"]
    return out


async def events_of(pool: asyncpg.Pool, tag: str) -> list[tuple[str, Any, Any, Any]]:
    rows = await pool.fetch(
        "SELECT kind, details FROM events WHERE tag = $1 AND kind <> 'register' ORDER BY ts, msg_id",
        tag,
    )
    return [
        (r["kind"], r["details"].get("fields"), r["details"].get("from"), r["details"].get("to"))
        for r in rows
    ]


def changed(cast: Cast, tag: str, column: str) -> str:
    """A new value for *column* that keeps the record coherent (and differs from the
    stored one), for the cylinder *tag*."""
    made = cast.made
    return {
        "stamp": f"NS-{tag}",
        "barcode": f"NB-{tag}",
        "owner_code": "TEST-B",
        "spec": "YSP12",
        "medium": "丙烷",
        "manufacturer": "另一家压力容器厂",
        "manufacture_date": made.replace(year=made.year - 1).isoformat(),
        "tare_kg": "16.25",
        "volume_l": "36",
        "last_inspection_date": made.replace(year=made.year + 1).isoformat(),
        "next_inspection_date": made.replace(year=made.year + 5).isoformat(),
        "scrap_date": made.replace(year=made.year + 10).isoformat(),
    }[column]


# ------------------------------------------------------------ forbidden, per role

# (starting status, column, new value or None for changed(), the column a refusal names)
FORBIDDEN: dict[str, list[tuple[str, str, str | None, str]]] = {
    "company_admin": [
        *(
            ("in_service", col, None, col)
            for col in (
                "stamp",
                "spec",
                "medium",
                "manufacturer",
                "manufacture_date",
                "tare_kg",
                "volume_l",
                "last_inspection_date",
                "next_inspection_date",
                "scrap_date",
                "owner_code",
            )
        ),
        ("in_service", "status", "in_inspection", "status"),  # a status it never sets
        ("in_service", "status", "scrapped", "status"),
        ("suspended", "status", "in_service", "status"),  # an agency's suspension
        ("scrapped", "status", "in_service", "tag"),  # a voided tag
    ],
    "inspector": [
        ("in_service", "owner_code", None, "owner_code"),
        ("in_service", "barcode", None, "barcode"),
        ("in_service", "status", "lost", "status"),
        ("scrapped", "status", "in_service", "tag"),
    ],
    "admin": [
        ("scrapped", "status", "in_service", "tag"),
        ("scrapped", "status", "suspended", "tag"),
    ],
}


@pytest.mark.parametrize("role", list(FORBIDDEN))
async def test_each_forbidden_change_is_refused_per_row_and_changes_nothing(
    pool: asyncpg.Pool, settings: Settings, cast: Cast, tmp_path: Path, role: str
) -> None:
    cases = FORBIDDEN[role]
    rows, before, expected = [], {}, {}
    for i, (status, column, value, named) in enumerate(cases):
        tag = await new_cylinder(pool, cast, status)
        row = await record(pool, tag)
        before[tag] = dict(row)
        row[column] = value if value is not None else changed(cast, tag, column)
        rows.append(row)
        expected[i + 2] = named
    # and one row the role may store: the rest of the file goes on
    good = await new_cylinder(pool, cast)
    allowed_column = "stamp" if role == "inspector" else "barcode"
    rows.append({**await record(pool, good), allowed_column: f"OK-{good}"})
    events_before = {t: await events_of(pool, t) for t in before}
    path = write_file(tmp_path, csv_bytes(rows))
    report = await run_import(pool, settings, path, cast.principal(role))
    got = reasons(report)
    assert {line: col for line, (col, _) in got.items()} == expected, got
    for line, (column, reason) in got.items():
        tried = cases[line - 2][1]
        if tried == column and column not in ("status", "owner_code"):
            assert f"role {role} may not change {column} (on record: " in reason, reason
        elif column == "tag":
            assert "voided" in reason, reason
        else:
            assert reason, line
    assert (report.updated, report.inserted, report.rejected_total) == (1, 0, len(cases))
    for tag, old in before.items():  # nothing half-written
        assert await record(pool, tag) == old
        assert await events_of(pool, tag) == events_before[tag]


async def test_the_gun_sees_no_new_date_from_a_company_file(
    pool: asyncpg.Pool, settings: Settings, cast: Cast, tmp_path: Path
) -> None:
    """The issue's own example: an overdue cylinder stays overdue whatever the file says."""
    tag = await new_cylinder(pool, cast)
    await pool.execute(
        "UPDATE cylinders SET next_inspection_date = $2 WHERE tag = $1",
        tag,
        cast.today - dt.timedelta(days=3),
    )
    row = await record(pool, tag)
    later = (cast.today + dt.timedelta(days=700)).isoformat()
    path = write_file(tmp_path, csv_bytes([{**row, "next_inspection_date": later}]))
    report = await run_import(pool, settings, path, cast.principal("company_admin"))
    assert reasons(report)[2][0] == "next_inspection_date"
    assert (await record(pool, tag))["next_inspection_date"] == row["next_inspection_date"]
    # and a dry run says the same without writing
    dry = await run_import(pool, settings, path, cast.principal("company_admin"), dry_run=True)
    assert reasons(dry) == reasons(report)


# ------------------------------------------------------------ permitted, with events

PERMITTED: dict[str, list[tuple[str, dict[str, str], tuple[str, Any, Any, Any]]]] = {
    # (starting status, changes, the event PATCH records)
    "company_admin": [
        ("in_service", {"barcode": "*"}, ("update", ["barcode"], None, None)),
        ("in_service", {"status": "lost"}, ("lost", None, "in_service", "lost")),
        ("lost", {"status": "in_service"}, ("status_change", None, "lost", "in_service")),
    ],
    "inspector": [
        (
            "in_service",
            {"next_inspection_date": "*"},
            ("update", ["next_inspection_date"], None, None),
        ),
        ("in_service", {"status": "suspended"}, ("status_change", None, "in_service", "suspended")),
        ("in_inspection", {"status": "scrapped"}, ("scrap", None, "in_inspection", "scrapped")),
    ],
    "admin": [
        ("in_service", {"owner_code": "*"}, ("update", ["owner_company_id"], None, None)),
        ("suspended", {"status": "in_service"}, ("status_change", None, "suspended", "in_service")),
    ],
}


@pytest.mark.parametrize("role", list(PERMITTED))
async def test_a_permitted_change_is_stored_with_its_trajectory_event(
    pool: asyncpg.Pool, settings: Settings, cast: Cast, tmp_path: Path, role: str
) -> None:
    rows, tags = [], []
    for status, changes, _ in PERMITTED[role]:
        tag = await new_cylinder(pool, cast, status)
        row = await record(pool, tag)
        for col, value in changes.items():
            row[col] = changed(cast, tag, col) if value == "*" else value
        rows.append(row)
        tags.append(tag)
    path = write_file(tmp_path, csv_bytes(rows))
    dry = await run_import(pool, settings, path, cast.principal(role), dry_run=True)
    assert (dry.updated, dry.rejected) == (len(rows), [])
    assert [await events_of(pool, t) for t in tags] == [[] for _ in tags]  # a dry run writes none
    report = await run_import(pool, settings, path, cast.principal(role))
    assert (report.updated, report.rejected) == (len(rows), [])
    for tag, row, (_, _, event) in zip(tags, rows, PERMITTED[role], strict=True):
        stored = await record(pool, tag)
        assert {c: stored[c] for c in ARCHIVE_COLUMNS} == {
            c: (row[c] if c not in ("tare_kg", "volume_l") else stored[c]) for c in ARCHIVE_COLUMNS
        }
        assert await events_of(pool, tag) == [event]
        details = await pool.fetchval(
            "SELECT details FROM events WHERE tag = $1 AND kind <> 'register'", tag
        )
        assert (details["source"], details["file"]) == ("import", path.name)
    # importing the same file again changes nothing and records nothing more
    again = await run_import(pool, settings, path, cast.principal(role))
    assert (again.updated, again.unchanged) == (0, len(rows))
    assert [len(await events_of(pool, t)) for t in tags] == [1] * len(tags)


async def test_a_company_registers_without_stating_findings(
    pool: asyncpg.Pool, settings: Settings, cast: Cast, tmp_path: Path
) -> None:
    """New rows by a company follow POST's rule (server.domain.registration): no inspection
    dates or status of its own word; left empty they are derived."""
    made = cast.made.isoformat()
    base = {"owner_code": "TEST-A", "spec": "YSP35.5", "manufacture_date": made}
    later = cast.today.replace(year=cast.today.year + 3).isoformat()
    rows = [
        {**base, "tag": f"REG-{secrets.token_hex(4)}", "next_inspection_date": later},
        {**base, "tag": f"REG-{secrets.token_hex(4)}", "scrap_date": later},
        {**base, "tag": f"REG-{secrets.token_hex(4)}", "last_inspection_date": made},
        {**base, "tag": f"REG-{secrets.token_hex(4)}", "status": "lost"},
        {**base, "tag": f"REG-{secrets.token_hex(4)}", "status": "in_service"},  # the default
        {**base, "tag": f"REG-{secrets.token_hex(4)}"},
    ]
    path = write_file(tmp_path, csv_bytes(rows))
    report = await run_import(pool, settings, path, cast.principal("company_admin"))
    got = reasons(report)
    assert {line: col for line, (col, _) in got.items()} == {
        2: "next_inspection_date",
        3: "scrap_date",
        4: "last_inspection_date",
        5: "status",
    }
    assert "may not state this when registering" in got[2][1]
    assert report.inserted == 2
    rec = await record(pool, rows[5]["tag"])
    assert rec["next_inspection_date"] == cast.made.replace(year=cast.made.year + 4).isoformat()
    # an inspection agency states them (it is its finding)
    inspector = await run_import(pool, settings, path, cast.principal("inspector"))
    assert (inspector.inserted, inspector.rejected) == (4, [])


# ------------------------------------------------------------ PATCH and import agree

CHANGEABLE = [c for c in ARCHIVE_COLUMNS if c != "tag"]
changes_strategy = st.dictionaries(
    st.sampled_from(CHANGEABLE),
    st.sampled_from(CYLINDER_STATUSES),  # used for status only; other columns use changed()
    min_size=1,
    max_size=4,
)


def patch_body(cast: Cast, tag: str, changes: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for col, status in changes.items():
        if col == "status":
            body["status"] = status
        elif col == "owner_code":
            body["owner_company_id"] = cast.world.companies["B"]
        elif col in ("tare_kg", "volume_l"):
            body[col] = float(changed(cast, tag, col))
        else:
            body[col] = changed(cast, tag, col)
    return body


@pytest.fixture
async def rules_client(aiohttp_client: Any, settings: Settings) -> Any:
    from server.api import cylinders
    from tests.archive.conftest import _archive_client

    return await _archive_client(aiohttp_client, settings, cylinders.routes())


@given(
    role=st.sampled_from(list(USERS)),
    start=st.sampled_from(CYLINDER_STATUSES),
    changes=changes_strategy,
)
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_patch_and_import_agree_on_what_each_role_may_change(
    rules_client: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    cast: Cast,
    tmp_path: Path,
    role: str,
    start: str,
    changes: dict[str, str],
) -> None:
    by_hand, by_file = await new_cylinder(pool, cast, start), await new_cylinder(pool, cast, start)
    if changes.get("status") == start:
        del changes["status"]  # not a change: PATCH would judge a status it only keeps
    if not changes:
        return
    # by hand
    rec = await record(pool, by_hand)
    headers = await auth(rules_client, USERS[role])
    resp = await rules_client.patch(
        f"/api/v1/cylinders/{rec['id']}", json=patch_body(cast, by_hand, changes), headers=headers
    )
    out = await resp.json()
    # by file: the twin, the same changes
    row = await record(pool, by_file)
    for col, status in changes.items():
        row[col] = status if col == "status" else changed(cast, by_file, col)
    report = await run_import(
        pool, settings, write_file(tmp_path, csv_bytes([row])), cast.principal(role)
    )
    refused = reasons(report)
    assert (resp.status == 200) == (not refused), (role, start, changes, out, refused)
    if refused:
        # both name a field the row changes (each names the first it meets: PATCH in the
        # body's order, the file in its checking order); a scrapped cylinder's status move
        # is named by the file as its voided tag
        field = {"owner_company_id": "owner_code"}.get(*[out["error"]["details"]["field"]] * 2)
        column = refused[2][0]
        assert field in changes, (role, start, changes, out)
        assert column in changes or (start == "scrapped" and column == "tag"), (
            role,
            start,
            changes,
            refused,
        )
        return
    hand, file = await record(pool, by_hand), await record(pool, by_file)
    assert {c: hand[c] for c in COMPARED} == {c: file[c] for c in COMPARED}
    assert await events_of(pool, by_hand) == await events_of(pool, by_file)
