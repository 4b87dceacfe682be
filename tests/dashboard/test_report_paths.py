"""The dashboard mounts the officer PWA itself (the report pages' own tests:
tests/dashboard/test_reports_page.py)."""

from __future__ import annotations

from typing import Any


async def test_officer_pwa_is_mounted_by_the_dashboard(client: Any) -> None:
    r = await client.get("/m/manifest.webmanifest")
    assert r.status == 200
