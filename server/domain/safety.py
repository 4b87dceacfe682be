"""Safety inspections at the customer (入户安检; DOMAIN.md "Safety inspection at the customer";
docs/ARCHITECTURE.md §4): the vocabularies, who inspects and who reads, how a submission's
answers are checked against the catalogue version it names, the record's result, a failed
item's rectification deadline, and the record's seal.

Pure and synchronous: the handlers (``server.api.safety_inspections``) and the SQL
(``server.db.safety``) bring the rows, this module decides.

The seal (why a hash chain *and* an HMAC): each record's canonical JSON — customer, inspector,
catalogue version, every answer, the SHA-256 of every photo and of the signature — is hashed
together with the previous record's hash (``record_hash = sha256(prev_hash ‖ canonical)``), so
a record removed from or slipped into the sequence breaks the next link; and the hash is
signed with a server key kept outside the database (``seal = HMAC-SHA256(key, record_hash)``),
so whoever can write the database but not read the key cannot forge a consistent record. The
database refuses UPDATE and DELETE of a signed record outright (migration 0200); the seal is
what still tells a tampered row (a trigger disabled by a superuser) from a genuine one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "ANSWERS",
    "CUSTOMER_KINDS",
    "GENESIS",
    "INSPECT_ROLES",
    "READ_ROLES",
    "RECHECK_ROLES",
    "RECTIFICATION_STATES",
    "Answer",
    "AnswerRefused",
    "CatalogueItem",
    "canonical",
    "carried_deadline",
    "check_answers",
    "deadline_for",
    "fill_text",
    "record_hash",
    "result_of",
    "seal",
    "seal_key",
    "verify",
]

CUSTOMER_KINDS: Final = ("resident", "restaurant", "industrial")
"""A catalogue per kind of customer (the same words as ``customers.kind``)."""

ANSWERS: Final = ("pass", "fail", "na")
"""pass, fail, not applicable (不涉及)."""

INSPECT_ROLES: Final = ("station_operator", "officer")
"""Delivery staff of a company (their company's customers) and field officers (customers in
their districts) inspect (DESIGN §1)."""

READ_ROLES: Final = ("admin", "regulator", "officer", "company_admin", "station_operator")
"""Who reads records, each within their scope (``server.kernel.scope`` "safety_inspections");
inspection agencies and the public never."""

RECHECK_ROLES: Final = ("station_operator", "officer", "company_admin")
"""Who closes a rectification after a re-check at the customer's (within their scope)."""

CATALOGUE_READ_ROLES: Final = READ_ROLES
CATALOGUE_WRITE_ROLES: Final = ("admin",)

RECTIFICATION_STATES: Final = ("open", "closed", "superseded")
"""A rectification is open until a re-check closes it, or until a correction of its record
supersedes it (:func:`carried_deadline`; migration 0210)."""

GENESIS: Final = "0" * 64
"""The previous hash of the first record of the chain."""

SEAL_CONTEXT: Final = b"cylwatch safety-inspection seal v1"
"""Domain separation: the seal's key is derived from the install's secret for this use only."""


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """An item of one catalogue version, as a submission is checked against it."""

    id: int
    code: str
    photo_required_on_fail: bool
    rectification_days: int | None


@dataclass(frozen=True, slots=True)
class Answer:
    item_id: int
    answer: str
    note: str | None = None


class AnswerRefused(ValueError):
    """A submission's answers do not fit its catalogue version: ``field`` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_answers(
    items: Sequence[CatalogueItem],
    answers: Sequence[Answer],
    photo_items: Iterable[int],
) -> None:
    """Refuse (AnswerRefused) answers that name an item of another version, answer an item
    twice, leave one unanswered, use a word outside :data:`ANSWERS`, or fail an item that
    requires a photo on fail without one; photos of items outside the version too."""
    by_id = {i.id: i for i in items}
    seen: set[int] = set()
    for a in answers:
        if a.item_id not in by_id:
            raise AnswerRefused(
                "answers", f"item {a.item_id} is not in the catalogue version submitted"
            )
        if a.item_id in seen:
            raise AnswerRefused("answers", f"item {a.item_id} is answered twice")
        if a.answer not in ANSWERS:
            raise AnswerRefused("answers", f"item {a.item_id}: answer is one of {ANSWERS}")
        seen.add(a.item_id)
    missing = sorted(set(by_id) - seen)
    if missing:
        raise AnswerRefused("answers", f"items not answered: {missing}")
    photographed = set()
    for item_id in photo_items:
        if item_id not in by_id:
            raise AnswerRefused(
                "photo_items", f"item {item_id} is not in the catalogue version submitted"
            )
        photographed.add(item_id)
    for a in answers:
        item = by_id[a.item_id]
        if a.answer == "fail" and item.photo_required_on_fail and a.item_id not in photographed:
            raise AnswerRefused("photo", f"item {item.code} failed: a photo is required")


def result_of(answers: Iterable[Answer]) -> str:
    """``fail`` when any item failed, else ``pass``."""
    return "fail" if any(a.answer == "fail" for a in answers) else "pass"


def deadline_for(inspected_on: dt.date, item_days: int | None, default_days: int) -> dt.date:
    """A failed item's rectification deadline: the item's own days, else ``[safety]
    rectification_days`` (DOMAIN.md: 5 days by default), counted from the inspection day."""
    return inspected_on + dt.timedelta(days=item_days if item_days is not None else default_days)


TEXT_LIMITS: Final = ("regulator_life_months", "hose_life_months")
"""Numbers a catalogue item's text may name as ``{key}``: the ``[safety]`` keys of the same
names (DOMAIN.md: a regulator's service life, 24 months to 5 years, and a hose's replacement
interval, 18 months to 2 years, are local rules). The text carries the placeholder and not the
number, so a deployment's rule is its config, and a published version never has to change."""


def fill_text(text: str, limits: Any) -> str:
    """*text* with each ``{key}`` of :data:`TEXT_LIMITS` replaced by ``limits.key`` (the
    ``[safety]`` settings); other braces are left as typed."""
    values = {
        "regulator_life_months": limits.regulator_life_months,
        "hose_life_months": limits.hose_life_months,
    }
    for key in TEXT_LIMITS:
        text = text.replace("{" + key + "}", str(values[key]))
    return text


def carried_deadline(computed: dt.date, previous: dt.date | None) -> dt.date:
    """The deadline of a correction's rectification of an item the corrected record failed too
    (its open rectification carried over): the earlier of the two — a correction corrects what
    was recorded, it never gives the customer more time (a correction submitted on day 4 of 5
    would otherwise restart the count)."""
    return computed if previous is None else min(computed, previous)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(record: Mapping[str, Any]) -> bytes:
    """The record's canonical JSON: sorted keys, no spaces, datetimes in UTC to the microsecond,
    answers ordered by item and photos by (item, hash) — the same bytes from the submission and
    from the stored rows."""
    out = dict(record)
    for key in ("inspected_at",):
        if isinstance(out.get(key), dt.datetime):
            out[key] = _utc(out[key])
    out["answers"] = sorted(
        (
            {"item_id": a["item_id"], "answer": a["answer"], "note": a.get("note")}
            for a in out.get("answers", [])
        ),
        key=lambda a: a["item_id"],
    )
    out["photos"] = sorted(
        ({"item_id": p["item_id"], "sha256": p["sha256"]} for p in out.get("photos", [])),
        key=lambda p: (p["item_id"], p["sha256"]),
    )
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS)


def record_hash(prev_hash: str, body: bytes) -> str:
    """The chain's link: sha256(previous record's hash ‖ this record's canonical JSON)."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


def seal_key(install_secret: bytes) -> bytes:
    """The seal's key, derived from the install's secret (never stored in the database)."""
    return hmac.new(install_secret, SEAL_CONTEXT, hashlib.sha256).digest()


def seal(key: bytes, link: str) -> str:
    return hmac.new(key, link.encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, prev_hash: str, body: bytes, stored_hash: str, stored_seal: str) -> bool:
    """Does the stored record still hash and seal to what was written when it was signed?"""
    link = record_hash(prev_hash, body)
    return hmac.compare_digest(link, stored_hash) and hmac.compare_digest(
        seal(key, link), stored_seal
    )
