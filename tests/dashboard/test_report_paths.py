"""docs/ARCHITECTURE.md §8's /reports/... paths lead to the page where reports are run (/exports)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("path", ["/reports", "/reports/compliance-summary"])
async def test_report_paths_lead_to_exports(client: Any, path: str) -> None:
    r = await client.get(path, allow_redirects=False)
    assert r.status == 302
    assert r.headers["Location"] == "/exports"


async def test_officer_pwa_is_mounted_by_the_dashboard(client: Any) -> None:
    r = await client.get("/m/manifest.webmanifest")
    assert r.status == 200
