"""Fixtures for the archive import/export tests.

The session's `world` is shared, so these tests create their own two companies (unique
codes) and their own cylinders (unique tags from `Arc.tag()`), and never change the world's
rows. Files are built in `tmp_path` from plain dicts so that each test shows its data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.archive import ARCHIVE_COLUMNS, ImportReport, import_archive, open_archive
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from tests.conftest import World


@dataclass
class Arc:
    """Two companies of the archive tests and principals acting for them."""

    code_a: str
    code_b: str
    company_a: int
    company_b: int
    admin: Principal
    admin_a: Principal
    admin_b: Principal
    inspector: Principal
    today: dt.date
    prefix: str
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def tag(self) -> str:
        return f"{self.prefix}-{next(self._seq)}"

    def row(self, **over: Any) -> dict[str, Any]:
        """A good archive row of company A (override any column)."""
        tag = over.pop("tag", None) or self.tag()
        made = self.today.replace(year=self.today.year - 2, day=1)
        base: dict[str, Any] = {
            "tag": tag,
            "stamp": f"ST{tag}",
            "barcode": f"BC{tag}",
            "owner_code": self.code_a,
            "spec": "YSP35.5",
            "medium": "LPG",
            "manufacturer": "郑州压力容器厂",
            "manufacture_date": made.isoformat(),
            "tare_kg": "15.5",
            "volume_l": "35.5",
            "last_inspection_date": "",
            "next_inspection_date": "",
            "scrap_date": "",
            "status": "in_service",
        }
        base.update(over)
        return base


@pytest.fixture(scope="session")
async def arc(pool: asyncpg.Pool, world: World, settings: Settings) -> Arc:
    from server.kernel.clock import city_today

    suffix = secrets.token_hex(3).upper()
    ids: dict[str, int] = {}
    async with pool.acquire() as conn:
        for key, district in (("A", "410105"), ("B", "410103")):
            ids[key] = await conn.fetchval(
                "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3)"
                " RETURNING id",
                f"ARC{key}-{suffix}",
                f"档案测试{key}公司",
                district,
            )
    admin = Principal(user_id=world.users["t_admin"], username="t_admin", role="admin")
    return Arc(
        code_a=f"ARCA-{suffix}",
        code_b=f"ARCB-{suffix}",
        company_a=ids["A"],
        company_b=ids["B"],
        admin=admin,
        admin_a=Principal(user_id=0, username="arc_a", role="company_admin", company_id=ids["A"]),
        admin_b=Principal(user_id=0, username="arc_b", role="company_admin", company_id=ids["B"]),
        inspector=Principal(
            user_id=world.users["t_inspector"],
            username="t_inspector",
            role="inspector",
            site_id=world.sites["INS-1"],
        ),
        today=city_today(settings),
        prefix=f"ARC{suffix}",
    )


def csv_bytes(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] = ARCHIVE_COLUMNS,
    *,
    encoding: str = "utf-8",
    header: Sequence[str] | None = None,
) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header if header is not None else columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    return buf.getvalue().encode(encoding)


def write_file(tmp_path: Path, data: bytes, name: str = "archive.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def run_import(
    pool: asyncpg.Pool,
    settings: Settings,
    path: Path,
    principal: Principal,
    **kw: Any,
) -> ImportReport:
    src = open_archive(path, settings.http)
    try:
        async with pool.acquire() as conn:
            return await import_archive(conn, src, settings, principal, filename=path.name, **kw)
    finally:
        src.close()


def reasons(report: ImportReport) -> dict[int, tuple[str, str]]:
    """line → (column, reason) of every rejected row."""
    return {r.line: (r.column, r.reason) for r in report.rejected}


async def new_company(pool: asyncpg.Pool, district: str = "410105") -> tuple[str, int]:
    """A company of one's own (unique code), for tests that export "everything of X"."""
    code = f"ARCX-{secrets.token_hex(4).upper()}"
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
        code,
        f"导出测试{code}",
        district,
    )
    return code, int(cid)


@pytest.fixture
async def archive_client(make_archive_client: Any, settings: Settings) -> Any:
    return await make_archive_client(settings)


@pytest.fixture
def make_archive_client(aiohttp_client: Any, world: World) -> Any:
    """Build an app with the real middlewares (errors, auth), login and the archive routes
    only, on the given settings (a test may lower a limit).

    The archive endpoints need nothing else, and building just these keeps their tests
    independent of features (websockets, pages) being changed in parallel.
    """
    return lambda settings: _archive_client(aiohttp_client, settings)


async def _archive_client(aiohttp_client: Any, settings: Settings, more: Any = ()) -> Any:
    """The app of `make_archive_client`, with *more* routes (the rules tests PATCH too)."""
    from collections.abc import AsyncIterator

    from aiohttp import web

    from server.api import archive, auth
    from server.app import connect_redis
    from server.db.pool import create_pool
    from server.kernel import principal
    from server.kernel.appkeys import POOL, REDIS, SETTINGS
    from server.kernel.errors import error_middleware

    async def services(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await create_pool(settings)
        app[REDIS] = await connect_redis(settings)
        yield
        await app[REDIS].aclose()
        await app[POOL].close()

    app = web.Application(
        middlewares=[error_middleware, principal.auth_middleware],
        client_max_size=settings.http.max_upload_mb * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(services)
    app.router.add_routes(auth.routes())
    app.router.add_routes(archive.routes())
    app.router.add_routes(more)
    return await aiohttp_client(app)
