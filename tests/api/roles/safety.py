"""Matrix rows of safety inspections (server/api/safety_items.py, safety_inspections.py,
safety_records.py, safety_rectifications.py).

A made record is of company A's customer in 金水区 (410105), written by SQL (its seal is not
what the matrix checks): company B's admin does not see it (404), inspection agencies never
(403). The submission and the re-check carry a multipart body with no signature / no photo:
the roles allowed to call get 400 (nothing stored), the others 403/401 — the full happy paths
are tests/api/test_safety_inspections.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.roles import Case, Maker

_BOUNDARY = "cwsafetyboundary"
_NO_SIGNATURE = (
    f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n--{_BOUNDARY}--\r\n'
).encode()
_MULTIPART = f"multipart/form-data; boundary={_BOUNDARY}"


async def _record_a(fresh: Any) -> int:
    w = fresh.world
    pool = fresh.pool
    upload = await pool.fetchval(
        """INSERT INTO uploads (sha256, mime, size, purpose) VALUES ($1, 'image/png', 1, 'safety_signature')
           RETURNING id""",
        "a" * 64,
    )
    cat = await pool.fetchval(
        "SELECT id FROM safety_catalogues WHERE customer_kind = 'resident' AND version = 1"
    )
    return int(
        await pool.fetchval(
            """INSERT INTO safety_inspections (client_id, customer_id, company_id, district_code,
                   catalogue_id, inspector_id, inspector_role, inspected_at, result, failed_count,
                   signature_upload_id, prev_hash, record_hash, seal)
               VALUES ($1, $2, $3, '410105', $4, $5, 'station_operator', now(), 'pass', 0, $6,
                       $7, $8, $7) RETURNING id""",
            uuid.uuid4(),
            w.customers["A"],
            w.companies["A"],
            cat,
            w.users["t_operator_a"],
            upload,
            "0" * 64,
            uuid.uuid4().hex * 2,
        )
    )


async def _rectification_a(fresh: Any) -> int:
    rid = await _record_a(fresh)
    item = await fresh.pool.fetchval(
        """SELECT i.id FROM safety_items i JOIN safety_inspections s ON s.catalogue_id = i.catalogue_id
            WHERE s.id = $1 ORDER BY i.position LIMIT 1""",
        rid,
    )
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO safety_rectifications (inspection_id, item_id, company_id, district_code,
                                                  deadline)
               VALUES ($1, $2, $3, '410105', current_date + 5) RETURNING id""",
            rid,
            item,
            fresh.world.companies["A"],
        )
    )


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "safety.items": Case(
        "GET", "/api/v1/safety-items", (200, 200, 200, 200, 200, 200, 200, 403, 401)
    ),
    "safety.items_publish": Case(
        "POST",
        "/api/v1/safety-items",
        (201, 403, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {
            "customer_kind": "industrial",
            "items": [
                {
                    "group_code": "cylinder",
                    "code": "cylinder_upright",
                    "text_zh": "气瓶直立放置",
                    "text_en": "Cylinder stands upright",
                }
            ],
            "note": "role walk",
        },
    ),
    "safety.submit": Case(
        "POST",
        "/api/v1/safety-inspections",
        (403, 403, 403, 400, 403, 403, 400, 403, 401),
        raw=(_NO_SIGNATURE, _MULTIPART),
    ),
    "safety.list": Case(
        "GET", "/api/v1/safety-inspections", (200, 200, 200, 200, 200, 200, 200, 403, 401)
    ),
    "safety.get": Case(
        "GET",
        "/api/v1/safety-inspections/{fresh:safety_inspection}",
        (200, 200, 200, 200, 200, 404, 200, 403, 401),
    ),
    "safety.notice": Case(
        "GET",
        "/api/v1/safety-inspections/{fresh:safety_inspection}/notice",
        (200, 200, 200, 200, 200, 404, 200, 403, 401),
    ),
    "safety.file": Case(
        "GET",
        "/api/v1/safety-inspections/{fresh:safety_inspection}/files/1",
        (404, 404, 404, 404, 404, 404, 404, 403, 401),
        route="/api/v1/safety-inspections/{id}/files/{upload_id}",
    ),
    "safety.recheck": Case(
        "POST",
        "/api/v1/rectifications/{fresh:safety_rectification}/recheck",
        (403, 403, 403, 400, 400, 400, 400, 403, 401),
        raw=(_NO_SIGNATURE, _MULTIPART),
    ),
}

FRESH: dict[str, Maker] = {
    "safety_inspection": _record_a,
    "safety_rectification": _rectification_a,
}
