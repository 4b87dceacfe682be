"""The demo logins (docs/ARCHITECTURE.md §1's roles, one account each) that `cylwatch seed` creates.

They are printed by ``cylwatch seed`` and ``cylwatch demo`` so that a newcomer can try
every role at once; passwords are hashed with the configured parameters
(``[auth]``, docs/CONFIG.md) like any other account's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from server.kernel.districts import District
from server.kernel.passwords import hash_password
from server.kernel.settings import Settings
from server.seed.records import Company, Site


@dataclass(frozen=True)
class DemoUser:
    """A demo login; printed by ``cylwatch seed`` and ``cylwatch demo``.

    ``binding`` says what the account is attached to: ``company`` (the first company),
    ``station`` (that company's first filling station), ``agency`` (the first inspection
    agency) or nothing. ``districts`` scopes regulators and officers.
    """

    username: str
    password: str
    role: str
    description: str
    display_name: str
    districts: tuple[str, ...] = ()
    binding: str | None = None


DEMO_USERS: Final[tuple[DemoUser, ...]] = (
    DemoUser("admin", "admin-demo-2026", "admin", "platform administrator", "系统管理员"),
    DemoUser(
        "regulator",
        "regulator-demo-2026",
        "regulator",
        "city-wide regulator (市局)",
        "市局监管员",
    ),
    DemoUser(
        "jinshui",
        "jinshui-demo-2026",
        "regulator",
        "district regulator, 金水区 only",
        "金水区监管员",
        districts=("410105",),
    ),
    DemoUser(
        "officer",
        "officer-demo-2026",
        "officer",
        "field officer, 金水区 + 二七区 (phone view /m)",
        "执法队员",
        districts=("410105", "410103"),
    ),
    DemoUser(
        "company",
        "company-demo-2026",
        "company_admin",
        "company admin of ZZ-G001 (郑州华润燃气)",
        "华润燃气管理员",
        binding="company",
    ),
    DemoUser(
        "station",
        "station-demo-2026",
        "station_operator",
        "operator at ZZ-G001's first filling station",
        "充装站操作员",
        binding="station",
    ),
    DemoUser(
        "inspector",
        "inspector-demo-2026",
        "inspector",
        "inspector at the first inspection agency (检验站)",
        "检验员",
        binding="agency",
    ),
)


def format_demo_users(users: Sequence[DemoUser] = DEMO_USERS) -> str:
    """The demo logins as an aligned text table (for the console)."""
    rows = [("username", "password", "role", "scope")]
    rows += [(u.username, u.password, u.role, u.description) for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


async def create_demo_users(
    conn: asyncpg.Connection,
    settings: Settings,
    districts: Sequence[District],
    company: Company,
    station: Site,
    agency: Site,
) -> int:
    """Create the logins of :data:`DEMO_USERS`, bound to the demo *company*, its *station*
    and the first inspection *agency*; existing usernames are left alone. Returns how many
    were created."""
    known = [d.code for d in districts]
    created = 0
    for u in DEMO_USERS:
        user_districts = [c for c in u.districts if c in known]
        if u.districts and len(user_districts) < len(u.districts):
            user_districts = known[: len(u.districts)]  # a city configured without these codes
        company_id = site_id = None
        if u.binding == "company":
            company_id = company.id
        elif u.binding == "station":
            company_id, site_id = station.company_id, station.id
        elif u.binding == "agency":
            site_id = agency.id
        status = await conn.execute(
            """INSERT INTO users (username, password_hash, display_name, role, company_id,
                                  site_id, districts)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING""",
            u.username,
            hash_password(settings.auth, u.password),
            u.display_name,
            u.role,
            company_id,
            site_id,
            user_districts,
        )
        created += status.endswith(" 1")
    return created
