"""``inspection-due`` (server/api/report_cylinders_due.py): the city-wide regulator once got a
503 from it — the page's total was counted with the compliance CASE's parameters although
the count does not use them (asyncpg refuses unused arguments), and only when the first page
was full, so only a caller seeing many due cylinders met it (schemathesis found it)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import call
from tests.conftest import World


async def test_city_wide_regulator_pages_the_due_list(client: Any, world: World) -> None:
    """A full first page (two due cylinders in the world, one per page) must count the rest."""
    del world
    for user in ("t_regulator", "t_admin", "t_company_a", "t_inspector"):
        status, body = await call(client, "GET", "/api/v1/reports/inspection-due?page_size=1", user)
        assert status == 200, (user, body)
        assert body["page_size"] == 1
        assert len(body["items"]) <= 1
        assert body["total"] >= len(body["items"])
