"""Fill records pushed by an enterprise's own filling system: ``POST /api/v1/ingest/fills``
(docs/API.md "Enterprise data interface", docs/ARCHITECTURE.md §4, §11).

The same rules and alerts as a gun's fill over MQTT, by the same code: each record becomes
the gun's own fill message (``ingest.schemas.GunFill``, validated by ``ingest.schemas.parse``
with the MQTT contract's bounds and checks) and is stored by ingest's batch writer
(``ingest.store.batch.BatchStore``): the ``fills`` row and its trajectory event, the
cylinder's live state, ``overfill`` / ``underfill`` / ``repeat_fill`` / ``unknown_tag`` and
the circulation checks, the alerts raised or bumped and their live events.

A gun asks before it fills and the platform may refuse; a record arrives after the fill. So
each record is also judged by the fill-authorization rule (``server.domain.authorization``),
on the facts ``ingest.auth.AUTH_SQL`` gathers for a gun's request — run once for the whole
batch — as of the fill's day in the city. A fill the platform would have refused (a scrapped
or overdue cylinder, another owner's, an unlicensed station) is stored as what happened, and
its refusal is recorded exactly as a gun's refused request: a ``fill_refused`` trajectory
event, the day's refusal count and the ``fill_denied`` alert with every reason (plus
``unknown_tag``), all by ingest's own code for a request.

The station is never taken on trust: the gun must be a registered, active gun of the named
station, and the station one of the caller's company (an admin's key: any). ``msg_id`` is
derived from (company, record_id), so the ``(msg_id, ts)`` de-duplication of the fills and
events tables holds for these rows too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final

import asyncpg
import msgspec
import orjson

from ingest.auth import AUTH_SQL, outcome_from_row
from ingest.schemas import (
    Checks,
    Id,
    NetKg,
    Parsed,
    Rejected,
    Tag,
    Text,
    TsMs,
    Weight,
    parse,
)
from ingest.store.batch import BatchStore
from ingest.store.context import Item
from server.api.enterprise_batch import RecordId, Row, rejected, stored
from server.db.enterprise import Entry
from server.domain.localtime import city_date
from server.domain.statuses import CHANNEL_ALERTS, FillResult
from server.kernel.districts import District, DistrictIndex
from server.kernel.events import Event
from server.kernel.http import field_from_msgspec
from server.kernel.principal import Principal
from server.kernel.settings import Settings

__all__ = ["FillBatch", "FillRecord", "FillStore"]

Moment = TsMs | Annotated[dt.datetime, msgspec.Meta(tz=True)]
"""Epoch milliseconds (as the gun's MQTT payload) or an RFC 3339 time with its offset."""
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS: Final = dt.timedelta(milliseconds=1)
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "cylwatch:enterprise-ingest")
WORKER: Final = "api:enterprise-ingest"
"""The writer's name in ``dead_letters.worker`` (none expected: records are checked first)."""


class FillRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fill as the enterprise's filling system recorded it (the gun's fill message,
    plus where it happened and the record's id)."""

    record_id: RecordId
    station_code: Id
    """A filling station of the caller's company."""
    gun_id: Id
    """A registered, active gun of that station (``POST /api/v1/devices``)."""
    ts: Moment
    """When the fill ended."""
    net_kg: NetKg
    tag: Tag | None = None
    """The cylinder's RFID tag; or give its barcode."""
    barcode: Tag | None = None
    ts_start: Moment | None = None
    operator: Text | None = None
    tare_kg: Weight | None = None
    gross_kg: Weight | None = None
    result: FillResult = "completed"
    pre_check: Checks | None = None
    """Pre-fill check items (item → passed); a failed one makes the fill aborted."""
    post_check: Checks | None = None


class FillBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/ingest/fills``: up to ``[enterprise] max_batch_rows`` records."""

    records: list[FillRecord]


def _ms(value: int | dt.datetime | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return (value - _EPOCH) // _MS


_BATCH_AUTH_SQL: Final = f"""
SELECT k.n, a.*
  FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k (gun, tag, day, n)
 CROSS JOIN LATERAL ({
    AUTH_SQL.replace("$1", "k.gun").replace("$2", "k.tag").replace("$3", "k.day")
}) AS a
"""
"""A gun's authorization facts (``ingest.auth.AUTH_SQL``, the same text) for every record."""
assert "$4" not in AUTH_SQL  # the substitution above covers every parameter

_SITES_SQL: Final = "SELECT id, code, kind, company_id FROM sites WHERE code = ANY($1::text[])"
_GUNS_SQL: Final = (
    "SELECT device_id, kind, active, site_id FROM devices WHERE device_id = ANY($1::text[])"
)
_BARCODES_SQL: Final = "SELECT barcode, tag FROM cylinders WHERE barcode = ANY($1::text[])"
_STORED_SQL: Final = """
SELECT f.msg_id, f.ts, f.cylinder_id, f.result, f.assessment
  FROM fills f JOIN unnest($1::text[], $2::timestamptz[]) AS k (msg_id, ts)
       ON f.msg_id = k.msg_id AND f.ts = k.ts
"""
_DISTRICTS_SQL: Final = (
    "SELECT code, name, coalesce(name_en, name) AS name_en, boundary FROM districts ORDER BY code"
)


class FillStore:
    """Stores one batch's fill records (``apply``), keeping the live events to publish once
    the transaction has committed (``events``) and the alerts it raised (``alerts``)."""

    def __init__(self, settings: Settings, p: Principal) -> None:
        self.settings = settings
        self.p = p
        self.events: list[Event] = []
        self.alerts: list[dict[str, Any]] = []

    def _msg_id(self, record_id: str, what: str = "fill") -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.p.company_id or 0}/{record_id}/{what}"))

    async def _where(self, conn: asyncpg.Connection, rows: list[Row]) -> list[Row]:
        """Check station, gun and cylinder of each record; return the rows still standing,
        each record's ``tag`` resolved (from its barcode if need be)."""
        recs: list[FillRecord] = [row.record for row in rows]
        sites = {
            r["code"]: r
            for r in await conn.fetch(_SITES_SQL, sorted({r.station_code for r in recs}))
        }
        guns = {
            r["device_id"]: r for r in await conn.fetch(_GUNS_SQL, sorted({r.gun_id for r in recs}))
        }
        wanted = sorted({r.barcode for r in recs if r.barcode is not None})
        by_barcode = {r["barcode"]: r["tag"] for r in await conn.fetch(_BARCODES_SQL, wanted)}
        own = self.p.company_id if self.p.role != "admin" else None
        out = []
        for row, rec in zip(rows, recs, strict=True):
            site = sites.get(rec.station_code)
            gun = guns.get(rec.gun_id)
            tag = by_barcode.get(rec.barcode) if rec.barcode is not None else None
            if (
                site is None
                or site["kind"] != "filling_station"
                or (own is not None and site["company_id"] != own)
            ):
                whose = "of your company" if own is not None else "registered"
                row.outcome = rejected(
                    "station_code", f"{rec.station_code} is not a filling station {whose}"
                )
            elif (
                gun is None
                or gun["kind"] != "gun"
                or not gun["active"]
                or (gun["site_id"] != site["id"])
            ):
                row.outcome = rejected(
                    "gun_id", f"{rec.gun_id} is not an active gun of station {rec.station_code}"
                )
            elif rec.tag is None and rec.barcode is None:
                row.outcome = rejected("tag", "tag or barcode is required")
            elif rec.barcode is not None and tag is None:
                row.outcome = rejected("barcode", f"no cylinder has the barcode {rec.barcode}")
            elif rec.tag is not None and tag is not None and tag != rec.tag:
                row.outcome = rejected(
                    "barcode", f"barcode {rec.barcode} is another cylinder's than tag {rec.tag}"
                )
            else:
                if rec.tag is None:
                    row.record = msgspec.structs.replace(rec, tag=tag)
                out.append(row)
        return out

    def _item(self, row: Row, now: dt.datetime, kind: str = "fill") -> Item | Rejected:
        """The record as the gun's MQTT message (``fill``, or the ``auth`` request it would have
        made), validated by the MQTT contract's own parser."""
        rec: FillRecord = row.record
        body: dict[str, Any] = {
            "msg_id": self._msg_id(str(row.record_id), kind),
            "ts": _ms(rec.ts),
            "tag": rec.tag,
            "operator": rec.operator,
        }
        if kind == "fill":
            body.update(
                net_kg=rec.net_kg,
                ts_start=_ms(rec.ts_start),
                tare_kg=rec.tare_kg,
                gross_kg=rec.gross_kg,
                result=rec.result,
                pre_check=rec.pre_check,
                post_check=rec.post_check,
            )
        payload = orjson.dumps({k: v for k, v in body.items() if v is not None})
        topic = f"cyl/v1/gun/{rec.gun_id}/{kind}"
        skew = dt.timedelta(hours=self.settings.ingest.max_future_skew_h)
        parsed = parse(topic, payload, now, skew)
        if isinstance(parsed, Parsed):
            return Item(topic, payload, now, parsed=parsed)
        return parsed if isinstance(parsed, Rejected) else Rejected(f"unknown topic: {topic}")

    async def _store(self, conn: asyncpg.Connection, items: list[Item]) -> None:
        rows = await conn.fetch(_DISTRICTS_SQL)
        districts = [District(r["code"], r["name"], r["name_en"], r["boundary"]) for r in rows]
        writer = BatchStore(
            self.settings, DistrictIndex(districts), [r["code"] for r in rows], WORKER
        )
        result = await writer.store(conn, items)
        self.events.extend(result.events)
        self.alerts.extend(
            {k: e.data.get(k) for k in ("id", "kind", "subject_id", "count", "state")}
            for e in result.events
            if e.channel == CHANNEL_ALERTS
        )

    async def apply(self, conn: asyncpg.Connection, rows: list[Row]) -> None:
        """Judge and store the records (the batch's ``Apply``)."""
        now = dt.datetime.now(dt.UTC)
        ready: list[tuple[Row, Item, Parsed]] = []
        for row in await self._where(conn, rows):
            item = self._item(row, now)
            if isinstance(item, Rejected):
                row.outcome = _refusal(item.reason)
            else:
                assert item.parsed is not None
                ready.append((row, item, item.parsed))
        if not ready:
            return
        days = [city_date(parsed.ts, self.settings.alerts) for _, _, parsed in ready]
        facts = await conn.fetch(
            _BATCH_AUTH_SQL,
            [row.record.gun_id for row, _, _ in ready],
            [row.record.tag for row, _, _ in ready],
            days,
        )
        items: list[Item] = []
        decisions = []
        for (row, item, _), fact, day in zip(
            ready, sorted(facts, key=lambda r: r["n"]), days, strict=True
        ):
            outcome = outcome_from_row(fact, self.settings, day, now, started=None)
            decisions.append(outcome.decision)
            if not outcome.decision.allowed:  # recorded as the gun's refused request
                asked = self._item(row, now, "auth")
                assert isinstance(asked, Item)  # the fill's own fields passed
                asked.auth, asked.seq = outcome, len(items)
                items.append(asked)
            item.seq = len(items)
            items.append(item)
        await self._store(conn, items)
        keys = [(parsed.body.msg_id, parsed.ts) for _, _, parsed in ready]  # type: ignore[union-attr]
        found = {
            (r["msg_id"], r["ts"]): r
            for r in await conn.fetch(_STORED_SQL, [k[0] for k in keys], [k[1] for k in keys])
        }
        for (row, _, _), key, decision in zip(ready, keys, decisions, strict=True):
            fill = found.get(key)
            if fill is None:  # pragma: no cover - refused by the registry after our checks
                row.outcome = rejected("gun_id", f"{row.record.gun_id} was refused by the registry")
                continue
            result = {
                "msg_id": key[0],
                "ts": key[1].isoformat(),
                "cylinder_id": fill["cylinder_id"],
                "result": fill["result"],
                "assessment": fill["assessment"],
                "decision": decision.decision,
                "reasons": list(decision.reason_codes),
            }
            row.outcome = stored(**result)
            row.entry = Entry(
                str(row.record_id),
                result,
                cylinder_id=fill["cylinder_id"],
                fill_msg_id=key[0],
                fill_ts=key[1],
            )


def _refusal(reason: str) -> dict[str, Any]:
    """A record the MQTT contract's parser refused, as a rejected result naming the field."""
    if reason.startswith(("unknown topic", "invalid device id")):
        return rejected("gun_id", "gun_id must be a device id (no '/', at most 128 characters)")
    reason = reason.removeprefix("invalid payload: ")
    return rejected(field_from_msgspec(reason, "record"), reason.split(" - at ")[0])
