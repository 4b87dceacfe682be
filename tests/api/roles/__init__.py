"""Rows of the role × endpoint matrix (tests/api/test_roles.py), one module per group of work.

Each module here defines ``CASES: dict[str, Case]`` and may define ``FRESH: dict[str, Maker]``,
makers of a new row per call for paths that say ``{fresh:<kind>}`` (a row the call may change or
delete, so that one user's call does not spoil the next user's). test_roles.py merges them all
with its own rows and refuses a name defined twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import World

Body = Callable[[World], Any] | None
Maker = Callable[[Any], Awaitable[int]]  # (tests.api.conftest.Fresh) -> a new row's id


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # a template: {name} from targets, or fresh:<kind> for a new row per call
    expect: tuple[int, ...]  # admin reg regJ off coA coB opA insp anon
    body: Body = None
    raw: tuple[bytes, str] | None = None  # raw body and content type
    route: str | None = None  # the route pattern, when path is concrete
