"""A hand-built piece of city for the activity report tests (tests/api/test_report_activity.py,
tests/api/test_report_rollups.py): a company of the test's own with two filling stations in
金水区 (410105), and writers of fills, refusals and alerts at given city days — so every count
a report shows can be counted again here, independently, from the rows written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from server.db.rollup_refresh import OWN_WATERMARK, REFRESH_TIMEOUT_S, refresh
from server.db.rollups import RECENT_DAYS, refresh_own
from server.domain.localtime import city_zone
from server.kernel.principal import Principal
from tests.api.conftest import unique

DISTRICT = "410105"


@dataclass
class Mini:
    company_id: int
    company_code: str
    stations: list[int]
    station_codes: list[str]
    zone: Any
    today: dt.date
    fills: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def at(self, days_ago: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        """An instant on the city day *days_ago* before today, never in the future."""
        day = self.today - dt.timedelta(days=days_ago)
        moment = dt.datetime.combine(day, dt.time(hour, minute), self.zone)
        now = dt.datetime.now(dt.UTC)
        if moment > now:  # today, before *hour*: a moment earlier today instead
            start = dt.datetime.combine(day, dt.time(0, 0, 1), self.zone)
            moment = max(start, now - dt.timedelta(seconds=30))
        return moment


async def mini_city(pool: Any, settings: Any, prefix: str = "RA") -> Mini:
    code = unique(prefix)
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
        code,
        "活动测试" + code,
        DISTRICT,
    )
    stations, codes = [], []
    for i in (1, 2):
        scode = f"{code}-S{i}"
        sid = await pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon,
                                  permitted_full_storage)
               VALUES ($1, $2, 'filling_station', $3, $4, 34.8, 113.65, 100) RETURNING id""",
            scode,
            f"站{i}{code}",
            cid,
            DISTRICT,
        )
        stations.append(sid)
        codes.append(scode)
    zone = city_zone(settings.alerts)
    today = dt.datetime.now(zone).date()
    return Mini(cid, code, stations, codes, zone, today)


async def add_fill(
    pool: Any,
    m: Mini,
    ts: dt.datetime,
    station: int = 0,
    result: str = "completed",
    assessment: str | None = "ok",
    net_kg: str = "14.50",
    spec: str = "YSP35.5",
) -> None:
    row = {
        "ts": ts,
        "day": ts.astimezone(m.zone).date(),
        "station": station,
        "result": result,
        "assessment": assessment,
        "net_kg": Decimal(net_kg),
        "spec": spec,
    }
    m.fills.append(row)
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code, tag,
                              spec, net_kg, result, assessment)
           VALUES ($1, $2, 'GUN-RA', $3, $4, $5, $6, $7, $8, $9, $10)""",
        ts,
        unique("fill"),
        m.stations[station],
        m.company_id,
        DISTRICT,
        unique("TAG"),
        spec,
        Decimal(net_kg),
        result,
        assessment,
    )


async def add_refusal(
    pool: Any, m: Mini, ts: dt.datetime, reasons: list[str], station: int = 0
) -> None:
    m.refusals.append({"ts": ts, "day": ts.astimezone(m.zone).date(), "reasons": reasons})
    await pool.execute(
        """INSERT INTO events (ts, msg_id, tag, kind, site_id, company_id, district_code, details)
           VALUES ($1, $2, $3, 'fill_refused', $4, $5, $6, $7)""",
        ts,
        unique("deny"),
        unique("TAG"),
        m.stations[station],
        m.company_id,
        DISTRICT,
        {"reasons": reasons},
    )


async def add_alert(
    pool: Any,
    m: Mini,
    kind: str,
    first_at: dt.datetime,
    last_at: dt.datetime | None = None,
    *,
    station: int = 0,
    state: str = "open",
    count: int = 1,
    details: dict[str, Any] | None = None,
) -> int:
    subject_type = "site" if kind in ("overstock", "licence_expiring") else "cylinder"
    return int(
        await pool.fetchval(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                                   district_code, state, count, first_at, last_at, details)
               VALUES ($1, 'warning', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id""",
            kind,
            subject_type,
            unique("SUBJ"),
            m.company_id,
            m.stations[station],
            DISTRICT,
            state,
            count,
            first_at,
            last_at or first_at,
            details or {},
        )
    )


async def refreshed(pool: Any, settings: Any) -> None:
    """The rollups refreshed now with every row written so far, old days included (waiting
    for a refresh another app of the session may be doing)."""
    assert await refresh(pool, settings, wait=True, full=True)


async def refreshed_to(
    db: Any, function: str, settings: Any, upto: dt.date, *, full: bool = True
) -> None:
    """One rollup that keeps its own watermark (``rollup_refresh.OWN_WATERMARK``: its SQL
    function and extra arguments) refreshed up to *upto*, its history with it when *full*,
    waiting for a refresh another app of the session may be doing."""
    extra = dict(OWN_WATERMARK)[function](settings)
    assert await refresh_own(
        db,
        function,
        settings,
        *extra,
        upto=upto,
        split=upto - dt.timedelta(days=RECENT_DAYS),
        wait=True,
        full=full,
        bound_s=REFRESH_TIMEOUT_S,
    )


def three_callers(prefix: str, district: str, company_id: int) -> dict[str, Principal]:
    """The callers a rollup's answer is checked for against the raw rows: a city-wide
    regulator, a regulator of *district* and the admin of company *company_id* — the three
    shapes the role scope takes in SQL."""
    return {
        "regulator": Principal(user_id=1, username=f"{prefix}-regulator", role="regulator"),
        "district": Principal(
            user_id=2, username=f"{prefix}-district", role="regulator", districts=(district,)
        ),
        "company_admin": Principal(
            user_id=3, username=f"{prefix}-company", role="company_admin", company_id=company_id
        ),
    }


def period_query(today: dt.date, days: int, *, back: int = 0, **extra: str) -> dict[str, str]:
    """A report's query for the *days* city days ending *back* days before *today*."""
    last = today - dt.timedelta(days=back)
    first = last - dt.timedelta(days=days - 1)
    return {"from": first.isoformat(), "to": last.isoformat(), **extra}


def without_rollup(monkeypatch: Any, module: Any) -> Callable[[], AbstractContextManager[None]]:
    """A context in which a rollup module's ``watermark`` says "never refreshed", so its
    report reads the raw rows — the other side of a rollup-vs-raw comparison."""

    async def none(*_: Any) -> None:
        return None

    @contextmanager
    def ctx() -> Iterator[None]:
        with monkeypatch.context() as m:
            m.setattr(module, "watermark", none)
            yield

    return ctx
