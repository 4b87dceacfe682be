"""An officer files a complaint from the phone app (docs/API.md "Complaints"; issue 13):
``POST /api/v1/complaints`` as the officer lands with source ``mobile`` in the officer's
districts, with a photo through the multipart path; a cylinder of another district is refused
and nothing is stored."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.api.conftest import call, unique
from tests.api.test_complaints import form, png
from tests.conftest import World


async def test_an_officer_files_in_its_district_with_source_mobile(
    client: Any, pool: Any, world: World
) -> None:
    text = "巡查发现瓶阀漏气 " + unique()
    body = {"text": text, "code": "BC-TAG-A-OK", "contact": "13600000000"}
    status, out = await call(client, "POST", "/api/v1/complaints", "t_officer", body)
    assert status == 201, out
    assert out["source"] == "mobile" and out["state"] == "new" and out["text"] == text
    assert out["district_code"] == "410105" and out["company_id"] == world.companies["A"]
    assert out["history"][0]["actor_name"] == "t_officer"
    # the regulator finds it among the phone's complaints
    status, page = await call(client, "GET", "/api/v1/complaints?source=mobile", "t_regulator")
    assert status == 200 and out["id"] in [k["id"] for k in page["items"]], page
    # a regulator's call stays a phone call
    status, call_out = await call(
        client, "POST", "/api/v1/complaints", "t_regulator", {"text": "来电 " + unique()}
    )
    assert status == 201 and call_out["source"] == "phone", call_out


async def test_an_officer_may_not_file_outside_its_districts(
    client: Any, pool: Any, world: World
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM complaints")
    for bad in (
        {"text": "巡查", "code": "BC-TAG-B-OK"},  # company B's cylinder, 二七区
        {"text": "巡查", "company_id": world.companies["B"]},
        {"text": "巡查"},  # no district at all
    ):
        status, out = await call(client, "POST", "/api/v1/complaints", "t_officer", bad)
        assert status == 403 and out["error"]["details"]["field"] == "district_code", (bad, out)
    assert await pool.fetchval("SELECT count(*) FROM complaints") == before


async def test_an_officer_attaches_a_photo(client: Any, pool: Any) -> None:
    data = form(png(), text="瓶身锈蚀 " + unique(), code="BC-TAG-A-OK", contact="13600000000")
    status, out = await call(client, "POST", "/api/v1/complaints", "t_officer", data=data)
    assert status == 201 and out["source"] == "mobile" and out["has_photo"] is True, out
    status, raw = await call(client, "GET", f"/api/v1/complaints/{out['id']}/photo", "t_officer")
    assert status == 200 and Image.open(io.BytesIO(raw)).size == (120, 80)
    # a multipart body without its photo, or a photo outside the districts: nothing stored
    before = await pool.fetchval("SELECT count(*) FROM uploads")
    status, out = await call(
        client, "POST", "/api/v1/complaints", "t_officer", data=form(text="巡查")
    )
    assert status == 400 and out["error"]["details"]["field"] == "photo", out
    data = form(png(), text="巡查", code="BC-TAG-B-OK")
    status, out = await call(client, "POST", "/api/v1/complaints", "t_officer", data=data)
    assert status == 403, out
    assert await pool.fetchval("SELECT count(*) FROM uploads") == before
