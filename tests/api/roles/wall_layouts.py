"""Matrix rows of the wall layouts (server/api/wall_layouts.py, docs/API.md "Wall layouts").

Admins and regulators read layouts and switch walls; only admins create, change and delete.
The switch row names the wall of 二七区 (410103): the city-wide regulator may switch it, the
金水区 regulator may not (not its district). Each changing row gets a layout of its own.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.api.roles import Case, Maker

WINDOWS = [{"kind": "map", "x": 0, "y": 0, "w": 2, "h": 2}]


def _name(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(4)}"


async def _layout(fresh: Any) -> int:
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO wall_layouts (name, grid_columns, grid_rows, windows)
               VALUES ($1, 2, 2, $2) RETURNING id""",
            _name("role walk"),
            WINDOWS,
        )
    )


CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "wall_layouts.list": Case(
        "GET", "/api/v1/wall-layouts", (200, 200, 200, 403, 403, 403, 403, 403, 401)
    ),
    "wall_layouts.current": Case(
        "GET", "/api/v1/wall-layouts/current", (200, 200, 200, 403, 403, 403, 403, 403, 401)
    ),
    "wall_layouts.read": Case(
        "GET",
        "/api/v1/wall-layouts/{fresh:wall_layout}",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
    ),
    "wall_layouts.create": Case(
        "POST",
        "/api/v1/wall-layouts",
        (201, 403, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {"name": _name("role walk"), "columns": 2, "rows": 2, "windows": WINDOWS},
    ),
    "wall_layouts.patch": Case(
        "PATCH",
        "/api/v1/wall-layouts/{fresh:wall_layout}",
        (200, 403, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {"version": 1, "name": _name("role walk renamed")},
    ),
    "wall_layouts.delete": Case(
        "DELETE",
        "/api/v1/wall-layouts/{fresh:wall_layout}",
        (204, 403, 403, 403, 403, 403, 403, 403, 401),
    ),
    "wall_layouts.activate": Case(
        "POST",
        "/api/v1/wall-layouts/{fresh:wall_layout}/activate",
        (200, 200, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {"scope": "410103"},
    ),
}

FRESH: dict[str, Maker] = {"wall_layout": _layout}
