"""Typed body fields of the REST API (docs/API.md "Conventions").

Annotated types give msgspec the limits, so a bad value is a 400 naming the field before
any SQL runs: an integer beyond a bigint, or a text longer than its column, would otherwise
be a 500 from asyncpg. Each limit mirrors a column of the base migration.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from server.kernel.http import ID_MAX

__all__ = [
    "UNSET",
    "Code",
    "Count",
    "District",
    "Id",
    "Lat",
    "Lon",
    "Measure",
    "Name",
    "Note",
    "Phone",
    "Storage",
    "Text",
    "UnsetType",
]

_INT_MAX: Final = 2**31 - 1

Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=_INT_MAX)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/\-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
Phone = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+\- ()]*$")]
District = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Measure = Annotated[float, msgspec.Meta(ge=0, le=99999)]  # numeric(7, 2) columns
Storage = Annotated[int, msgspec.Meta(ge=0, le=_INT_MAX)]
Note = Annotated[str, msgspec.Meta(max_length=2000)]

UNSET = msgspec.UNSET
"""A PATCH field the body does not carry (distinct from an explicit ``null``)."""
UnsetType = msgspec.UnsetType
