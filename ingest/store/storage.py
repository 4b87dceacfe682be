"""Permitted storage: full cylinders held at a site above its permit raise ``overstock``.

Counted after the batch's state is written, for the sites whose stock of full cylinders
this batch may have grown (a completed fill, a return or a receipt there). The permit is
the site's ``permitted_full_storage``, else the ``[alerts]`` default for its kind
(docs/CONFIG.md). What is counted is the stock now, at the batch's commit, so the alert is
dated now whatever the device time of the message that touched the site.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from ingest.store.context import BatchContext, PendingAlert
from ingest.store.lookups import add_sites
from server.domain.supervision import is_overstock, permitted_storage

__all__ = ["check_overstock"]

_FULL_COUNT_SQL = """
SELECT location_site_id AS site_id, count(*) AS full
  FROM cylinders
 WHERE location_site_id = ANY($1::bigint[]) AND location_kind = 'site' AND fill_state = 'full'
 GROUP BY location_site_id
"""


async def check_overstock(conn: asyncpg.Connection, batch: BatchContext, now: datetime) -> None:
    site_ids = sorted(batch.touched_sites)
    if not site_ids:
        return
    counts = {r["site_id"]: r["full"] for r in await conn.fetch(_FULL_COUNT_SQL, site_ids)}
    await add_sites(conn, batch, site_ids)
    territory = batch.territory
    for sid in site_ids:
        site = batch.sites_by_id.get(sid)
        if site is None:
            continue
        try:
            permitted = permitted_storage(
                site["kind"], site["permitted_full_storage"], territory.settings.alerts
            )
        except ValueError:
            continue
        full = counts.get(sid, 0)
        if is_overstock(full, permitted):
            batch.alerts.append(
                PendingAlert(
                    "overstock",
                    site["code"],
                    now,
                    site_id=sid,
                    company_id=site["company_id"],
                    district_code=territory.fk_district(site["district_code"]),
                    lat=site["lat"],
                    lon=site["lon"],
                    details={"full": full, "permitted": permitted},
                )
            )
