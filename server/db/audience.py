"""Whom a message or notice reaches: an audience (users, companies, districts) checked against
the sender's scope and resolved to the users it reaches that day, and the picker's choices of
whom a sender may address (docs/ARCHITECTURE.md §7; the rules are server.domain.messages).

One place for "placed in a district" (:func:`in_districts_sql`), so that the fan-out, the
scope check of a district regulator's audience and the compose form's pickers agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from server.kernel.principal import Principal
from server.kernel.scope import Sql

__all__ = [
    "Audience",
    "AudienceError",
    "check_audience",
    "in_districts_sql",
    "resolve_audience",
    "targets",
]


class AudienceError(ValueError):
    """An audience naming something unknown or out of the sender's scope, reaching nobody, or
    too many; *field* names the part of the body (``to.users``...)."""

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.field = field
        self.details = details


@dataclass(frozen=True)
class Audience:
    """What a sender addressed: users, companies (all their users), districts (all users
    placed there; server.domain.messages)."""

    users: tuple[int, ...] = ()
    companies: tuple[int, ...] = ()
    districts: tuple[str, ...] = ()

    def public(self) -> dict[str, list[Any]]:
        return {
            "users": list(self.users),
            "companies": list(self.companies),
            "districts": list(self.districts),
        }

    @property
    def empty(self) -> bool:
        return not (self.users or self.companies or self.districts)


def in_districts_sql(u: str, param: str) -> str:
    """A user row *u* is placed in one of the districts *param* (a ``text[]`` parameter):
    an officer or regulator assigned to one; a company admin whose company is registered or
    runs a site there; a station operator or inspector whose site is there."""
    d = f"{param}::text[]"
    return (
        f"(({u}.role IN ('regulator', 'officer') AND {u}.districts && {d})"
        f" OR ({u}.role = 'company_admin' AND ({u}.company_id IN"
        f" (SELECT c.id FROM companies c WHERE c.district_code = ANY({d}))"
        f" OR {u}.company_id IN (SELECT s.company_id FROM sites s"
        f" WHERE s.district_code = ANY({d}) AND s.company_id IS NOT NULL)))"
        f" OR ({u}.role IN ('station_operator', 'inspector') AND {u}.site_id IN"
        f" (SELECT s.id FROM sites s WHERE s.district_code = ANY({d}))))"
    )


def _company_in_districts_sql(c: str, param: str) -> str:
    d = f"{param}::text[]"
    return (
        f"({c}.district_code = ANY({d}) OR EXISTS (SELECT 1 FROM sites s"
        f" WHERE s.company_id = {c}.id AND s.district_code = ANY({d})))"
    )


async def check_audience(conn: asyncpg.Connection, p: Principal, aud: Audience) -> None:
    """Refuse an audience naming a user, company or district that does not exist or lies
    outside a district regulator's districts (the same refusal: existence is not disclosed)."""
    wide = p.city_wide
    if aud.users:
        q = Sql(list(aud.users))
        where = ["u.id = ANY($1::bigint[])", "u.active"]
        if not wide:
            where.append(in_districts_sql("u", q.add(list(p.districts))))
        found = {
            r["id"]
            for r in await conn.fetch(
                f"SELECT u.id FROM users u WHERE {' AND '.join(where)}", *q.params
            )
        }
        _refuse_missing("to.users", "user", aud.users, found)
    if aud.companies:
        q = Sql(list(aud.companies))
        where = ["c.id = ANY($1::bigint[])"]
        if not wide:
            where.append(_company_in_districts_sql("c", q.add(list(p.districts))))
        found = {
            r["id"]
            for r in await conn.fetch(
                f"SELECT c.id FROM companies c WHERE {' AND '.join(where)}", *q.params
            )
        }
        _refuse_missing("to.companies", "company", aud.companies, found)
    if aud.districts:
        found_codes = {
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM districts WHERE code = ANY($1::text[])", list(aud.districts)
            )
            if wide or r["code"] in p.districts
        }
        _refuse_missing("to.districts", "district", aud.districts, found_codes)


def _refuse_missing(field: str, what: str, asked: Iterable[Any], found: set[Any]) -> None:
    missing = [x for x in asked if x not in found]
    if missing:
        raise AudienceError(
            field, f"{field}: no such {what} in your scope: {missing[:10]}", unknown=missing[:10]
        )


async def resolve_audience(
    conn: asyncpg.Connection, aud: Audience, *, exclude: int | None, limit: int
) -> list[int]:
    """The active users *aud* reaches (never *exclude*, the sender), at most *limit*.

    More than *limit* is refused before anything is written: the fan-out is bounded
    (``[messages] recipients_max``); nobody at all is refused too (a message to no one)."""
    q = Sql(list(aud.users), list(aud.companies))
    reach = ["u.id = ANY($1::bigint[])", "u.company_id = ANY($2::bigint[])"]
    if aud.districts:
        reach.append(in_districts_sql("u", q.add(list(aud.districts))))
    where = ["u.active", f"({' OR '.join(reach)})"]
    if exclude is not None:
        where.append(f"u.id <> {q.add(exclude)}")
    rows = await conn.fetch(
        f"SELECT u.id FROM users u WHERE {' AND '.join(where)} ORDER BY u.id"
        f" LIMIT {q.add(limit + 1)}",
        *q.params,
    )
    if len(rows) > limit:
        raise AudienceError(
            "to",
            f"to: reaches more than {limit} users (messages.recipients_max): split the audience",
            recipients=f">{limit}",
            limit=limit,
        )
    if not rows:
        raise AudienceError("to", "to: reaches no active user")
    return [r["id"] for r in rows]


async def targets(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, kind: str, text: str | None, limit: int
) -> list[dict[str, Any]]:
    """Whom *p* may address, for the compose form's pickers: active users, companies or
    districts in the sender's scope (all for an admin or a city-wide regulator), matching
    *text* (part of a name or code), at most *limit*."""
    q = Sql()
    where: list[str] = []
    like = (
        None
        if not text
        else "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    if kind == "users":
        where += ["u.active", f"u.id <> {q.add(p.user_id)}"]
        if not p.city_wide:
            where.append(in_districts_sql("u", q.add(list(p.districts))))
        if like:
            x = q.add(like)
            where.append(f"(u.username ILIKE {x} OR u.display_name ILIKE {x} OR c.name ILIKE {x})")
        sql = (
            "SELECT u.id, u.username, u.display_name, u.role, c.name AS company_name"
            " FROM users u LEFT JOIN companies c ON c.id = u.company_id"
            f" WHERE {' AND '.join(where)} ORDER BY u.username LIMIT {q.add(limit)}"
        )
    elif kind == "companies":
        where.append("TRUE")
        if not p.city_wide:
            where.append(_company_in_districts_sql("c", q.add(list(p.districts))))
        if like:
            x = q.add(like)
            where.append(f"(c.name ILIKE {x} OR c.code ILIKE {x})")
        sql = (
            "SELECT c.id, c.code, c.name, c.district_code FROM companies c"
            f" WHERE {' AND '.join(where)} ORDER BY c.name LIMIT {q.add(limit)}"
        )
    else:
        where.append("TRUE")
        if not p.city_wide:
            where.append(f"d.code = ANY({q.add(list(p.districts))}::text[])")
        if like:
            x = q.add(like)
            where.append(f"(d.name ILIKE {x} OR d.name_en ILIKE {x} OR d.code ILIKE {x})")
        sql = (
            "SELECT d.code, d.name, d.name_en FROM districts d"
            f" WHERE {' AND '.join(where)} ORDER BY d.code LIMIT {q.add(limit)}"
        )
    return [dict(r.items()) for r in await db.fetch(sql, *q.params)]
