"""Checking one archive row (docs/ARCHITECTURE.md §9): each cell on its own, then the row as a record.

A bad row is reported with its line, column and reason — one reason per row, the first
failing column in archive order — while the good rows of the file are stored. What this
module decides needs no database; checks that do (a tag repeated across chunks, a barcode
carried by another cylinder, a tag of another company, a scrapped cylinder) are the
importer's, in SQL over the staged rows. The file is the record: an empty
`next_inspection_date` / `scrap_date` is derived by the domain rules (DOMAIN.md "Dates"),
an empty `volume_l` comes from the model and an empty `status` is `in_service`. The dates of
the record must be coherent by the rule a registration or a change by hand obeys
(`server.domain.record_changes.check_dates`), with the same words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

from server.archive.interface import (
    DEFAULT_MEDIUM,
    NUMERIC_MAX,
    TAG_MAX_LEN,
    TEXT_MAX_LEN,
    Cell,
)
from server.archive.reader import ArchiveSource
from server.archive.reasons import Reason, reason
from server.db.bulk import Staging
from server.domain.dates import derive_next_inspection, derive_scrap_date
from server.domain.record_changes import DatesRefused, RecordDates, check_dates
from server.domain.statuses import IMPORT_STATUSES, IN_SERVICE
from server.kernel.settings import Settings
from server.kernel.tabular import EXCEL_EPOCH, restore

_EXCEL_FIRST_REAL_SERIAL: Final = 61
"""Excel's 1900 date system counts a 29 Feb 1900 that never was; serials from 61
(1900-03-01) on map to `EXCEL_EPOCH + serial` days, smaller ones are no cylinder's date."""
_DATE_RE: Final = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_HUNDREDTH: Final = Decimal("0.01")


class BadValue(Exception):
    """A cell's value is wrong: raised inside row validation, becomes a RejectedRow (its
    reason one of `server.archive.reasons`)."""

    def __init__(self, column: str, value: Cell, why: Reason) -> None:
        super().__init__(why.text)
        self.column, self.value, self.why = column, value, why

    @property
    def reason(self) -> str:
        return self.why.text


def show(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _text(value: Cell) -> str | None:
    """A cell as text; numbers typed into Excel (tags, barcodes) lose their `.0`, and the
    quote an export puts before a formula-like text (`server.kernel.tabular.neutralise`)
    is taken off again, so an exported archive imports unchanged."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = restore(str(value).strip())
    return text or None


def _storable(column: str, value: Cell, text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, which an XLSX cell can carry (``_x0000_``): the row is
    refused naming the column, not the whole import failing (docs/API.md "Import reasons")."""
    if text is not None and "\x00" in text:
        raise BadValue(
            column,
            value.replace("\x00", "") if isinstance(value, str) else value,
            reason("has_nul", column=column),
        )
    return text


def _code(column: str, value: Cell, *, required: bool) -> str | None:
    text = _storable(column, value, _text(value))
    if text is None:
        if required:
            raise BadValue(column, value, reason("required", column=column))
        return None
    if len(text) > TAG_MAX_LEN:
        raise BadValue(column, value, reason("too_long", column=column, max=TAG_MAX_LEN))
    if any(ch.isspace() for ch in text):
        raise BadValue(column, value, reason("has_spaces", column=column))
    return text


def _free_text(column: str, value: Cell) -> str | None:
    text = _storable(column, value, _text(value))
    if text is not None and len(text) > TEXT_MAX_LEN:
        raise BadValue(column, value, reason("too_long", column=column, max=TEXT_MAX_LEN))
    return text


def _date(column: str, value: Cell, *, required: bool = False) -> dt.date | None:
    """YYYY-MM-DD text (also YYYY/M/D, and a midnight time), or an Excel date cell/serial."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= _EXCEL_FIRST_REAL_SERIAL:
            with contextlib.suppress(OverflowError):
                return EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise BadValue(column, value, reason("not_a_date", column=column, value=show(value)))
    text = _text(value)
    if text is None:
        if required:
            raise BadValue(column, value, reason("required", column=column))
        return None
    m = _DATE_RE.match(text)
    if m is None:
        raise BadValue(column, value, reason("date_format", column=column, value=text))
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        why = reason("not_calendar_date", column=column, value=text)
        raise BadValue(column, value, why) from None


def _number(column: str, value: Cell) -> Decimal | None:
    """A positive amount fitting numeric(7, 2), rounded half-up to hundredths."""
    if value is None:
        return None
    if isinstance(value, bool | dt.date | dt.time | dt.timedelta) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise BadValue(column, value, reason("not_a_number", column=column, value=show(value)))
    if isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise BadValue(column, value, reason("not_a_number", column=column, value=text))
    if number <= 0:
        raise BadValue(column, value, reason("not_positive", column=column))
    if number > NUMERIC_MAX:
        raise BadValue(column, value, reason("too_large", column=column, max=str(NUMERIC_MAX)))
    number = number.quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)
    if number <= 0:
        raise BadValue(column, value, reason("too_small", column=column))
    return number


@dataclass(frozen=True)
class OwnerCompany:
    id: int
    district_code: str | None


@dataclass(frozen=True)
class Context:
    settings: Settings
    companies: dict[str, OwnerCompany]
    only_company: int | None
    """A company administrator's company: rows for any other owner are refused."""
    today: dt.date
    specs: dict[str, str]
    """Model code, case-folded → the configured spelling."""
    company_codes: dict[int, str]
    """Company id → code (a refused change of owner is reported by code, as the file has it)."""
    registration_restricted: bool = False
    """The importing role may not state every field when it registers a cylinder
    (``server.domain.registration``): the rows' stated findings are collected."""


STAGE: Final = Staging(
    "cyl_import_stage",
    (
        ("line", "integer NOT NULL"),
        ("tag", "text NOT NULL"),
        ("stamp", "text"),
        ("barcode", "text"),
        ("owner_company_id", "bigint NOT NULL"),
        ("owner_district", "text"),
        ("spec", "text NOT NULL"),
        ("medium", "text NOT NULL"),
        ("manufacturer", "text"),
        ("manufacture_date", "date NOT NULL"),
        ("tare_kg", "numeric"),
        ("volume_l", "numeric"),
        ("last_inspection_date", "date"),
        ("next_inspection_date", "date NOT NULL"),
        ("scrap_date", "date NOT NULL"),
        ("status", "text NOT NULL"),
    ),
    per_transaction=False,
)
"""The staging table of an import: a `Staged` record per row, in this column order. It
lives as long as the (pooled) connection and is emptied per chunk (`server.db.bulk`)."""
STAGED_INDEX: Final = {name: i for i, (name, _) in enumerate(STAGE.columns)}
"""Column name → its index in a `Staged` record."""
Staged = tuple[
    int,
    str,
    str | None,
    str | None,
    int,
    str | None,
    str,
    str,
    str | None,
    dt.date,
    Decimal | None,
    Decimal | None,
    dt.date | None,
    dt.date,
    dt.date,
    str,
]


_FINDING_COLUMNS: Final = ("last_inspection_date", "next_inspection_date", "scrap_date", "status")
"""The file's columns that carry an inspection agency's findings (server.domain.registration)."""


def _cell(cells: list[Cell], src: ArchiveSource, name: str) -> Cell:
    i = src.columns.get(name)
    if i is None or i >= len(cells):
        return None
    value = cells[i]
    return None if value == "" else value


def stated_findings(cells: list[Cell], src: ArchiveSource) -> list[str]:
    """The findings a row states, in column order: a date given rather than left to be
    derived, a status other than the default (a registration counts a field as stated when
    it differs from its default, ``server.api.cylinder_rows.registrant_body``)."""
    out = []
    for name in _FINDING_COLUMNS:
        text = _text(_cell(cells, src, name))
        if text is None or (name == "status" and text.lower() == IN_SERVICE):
            continue
        out.append(name)
    return out


def validate_row(line: int, cells: list[Cell], src: ArchiveSource, ctx: Context) -> Staged:
    """Check one row and give the record to stage; raise `BadValue` naming the first bad column."""

    def get(name: str) -> Cell:
        return _cell(cells, src, name)

    for i in range(src.width, len(cells)):
        if _text(cells[i]) is not None:
            raise BadValue("", cells[i], reason("beyond_header", index=i + 1))

    tag = _code("tag", get("tag"), required=True)
    assert tag is not None
    stamp = _code("stamp", get("stamp"), required=False)
    barcode = _code("barcode", get("barcode"), required=False)

    owner_raw = get("owner_code")
    owner_code = _code("owner_code", owner_raw, required=True)
    assert owner_code is not None
    company = ctx.companies.get(owner_code)
    if company is None:
        raise BadValue("owner_code", owner_raw, reason("unknown_company", value=owner_code))
    if ctx.only_company is not None and company.id != ctx.only_company:
        raise BadValue("owner_code", owner_raw, reason("not_your_company", value=owner_code))

    spec_raw = get("spec")
    spec_text = _text(spec_raw)
    if spec_text is None:
        raise BadValue("spec", spec_raw, reason("required", column="spec"))
    spec = ctx.specs.get(spec_text.casefold())
    if spec is None:
        known = sorted(ctx.settings.models)
        raise BadValue("spec", spec_raw, reason("unknown_model", value=spec_text, models=known))

    medium = _free_text("medium", get("medium")) or DEFAULT_MEDIUM
    manufacturer = _free_text("manufacturer", get("manufacturer"))

    mfg_raw = get("manufacture_date")
    manufacture = _date("manufacture_date", mfg_raw, required=True)
    assert manufacture is not None

    tare = _number("tare_kg", get("tare_kg"))
    volume = _number("volume_l", get("volume_l"))
    if volume is None:
        model = ctx.settings.models[spec]
        volume = Decimal(repr(model.volume_l)).quantize(_HUNDREDTH)

    raw = {
        "manufacture_date": mfg_raw,
        "last_inspection_date": get("last_inspection_date"),
        "next_inspection_date": get("next_inspection_date"),
        "scrap_date": get("scrap_date"),
    }
    last = _date("last_inspection_date", raw["last_inspection_date"])
    next_insp = _date("next_inspection_date", raw["next_inspection_date"])
    scrap = _date("scrap_date", raw["scrap_date"])

    def coherent(dates: RecordDates) -> None:
        try:
            check_dates(dates, ctx.today)
        except DatesRefused as bad:
            params = {} if bad.other is None else {"other": bad.other}
            why = reason(bad.code, column=bad.field, **params)
            raise BadValue(bad.field, raw[bad.field], why) from None

    rules = ctx.settings.dates
    try:
        next_insp = next_insp or derive_next_inspection(manufacture, last, rules)
        scrap = scrap or derive_scrap_date(manufacture, rules)
    except ValueError as exc:
        # derivation refuses a last inspection before manufacture and overflows only near
        # year 9999 (a date in the future): the rule names the field to correct
        coherent(RecordDates(manufacture, last, dt.date.max, dt.date.max))
        why = reason("date_not_derivable", column="manufacture_date", detail=str(exc))
        raise BadValue("manufacture_date", mfg_raw, why) from None
    coherent(RecordDates(manufacture, last, next_insp, scrap))

    status_raw = get("status")
    status_text = _text(status_raw)
    status = IN_SERVICE if status_text is None else status_text.lower()
    if status not in IMPORT_STATUSES:
        why = reason("unknown_status", allowed=list(IMPORT_STATUSES))
        raise BadValue("status", status_raw, why)

    return (
        line,
        tag,
        stamp,
        barcode,
        company.id,
        company.district_code,
        spec,
        medium,
        manufacturer,
        manufacture,
        tare,
        volume,
        last,
        next_insp,
        scrap,
        status,
    )
