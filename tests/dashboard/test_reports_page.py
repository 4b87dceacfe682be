"""The report pages' guard over HTTP (no browser; dashboard/pages/reports.py): who may open
the catalogue and a report's page, what a report the role may not run or an unknown report
answers, the scope of the filter choices handed to the page, and the districts' shapes the
choropleth charts draw."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import World
from tests.dashboard.test_pages import cookie_login, inline_scripts

CONFIG = re.compile(r'<script type="application/json" id="page-config">(.*?)</script>', re.S)


def page_config(body: str) -> dict[str, Any]:
    m = CONFIG.search(body)
    assert m, "no page config"
    return dict(json.loads(m.group(1)))


@pytest.mark.parametrize(
    "username",
    ["t_admin", "t_regulator", "t_officer", "t_company_a", "t_inspector"],
)
async def test_every_report_role_opens_the_catalogue_and_holdings(
    client: Any, username: str
) -> None:
    await cookie_login(client, username)
    for path in ("/reports", "/reports/holdings"):
        resp = await client.get(path)
        assert resp.status == 200, (username, path)
        body = await resp.text()
        assert inline_scripts(body) == []
        assert 'href="/reports" aria-current="page"' in body  # the menu marks the page


async def test_a_station_operator_gets_the_forbidden_page(client: Any) -> None:
    await cookie_login(client, "t_operator_a")
    for path in ("/reports", "/reports/holdings"):
        resp = await client.get(path)
        assert resp.status == 403, path
        assert "text/html" in resp.headers["Content-Type"]


async def test_a_report_the_role_may_not_run_is_forbidden(client: Any) -> None:
    """Inspection agencies read no fills (server.kernel.scope): the fills report is not
    theirs, while the cylinder reports are."""
    await cookie_login(client, "t_inspector")
    assert (await client.get("/reports/fills-daily")).status == 403
    assert (await client.get("/reports/inspection-due")).status == 200


async def test_an_unknown_report_is_the_not_found_page(client: Any) -> None:
    await cookie_login(client, "t_regulator")
    resp = await client.get("/reports/no-such-report")
    assert resp.status == 404
    assert "no-such-report" in await resp.text()


async def test_anonymous_is_sent_to_login_and_back(client: Any) -> None:
    resp = await client.get("/reports/holdings?district=410105", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login?next=/reports/holdings")


async def test_the_schedules_page_is_not_taken_for_a_report(client: Any) -> None:
    await cookie_login(client, "t_regulator")
    resp = await client.get("/reports/schedules")
    assert resp.status == 200
    assert 'id="report-form"' not in await resp.text()


async def test_filter_choices_are_the_callers_scope(client: Any, pool: Any, world: World) -> None:
    """A company admin chooses among its own company and stations only; a city-wide
    regulator among all (the page hides the company select when there is one). Other tests
    add stations to company A: every station offered must be A's, whichever they are."""
    await cookie_login(client, "t_company_a")
    cfg = page_config(await (await client.get("/reports/holdings")).text())
    assert [c["id"] for c in cfg["companies"]] == [world.companies["A"]]
    offered = {s["id"] for s in cfg["stations"]}
    assert world.sites["STA-A1"] in offered
    owners = await pool.fetch(
        "SELECT DISTINCT company_id FROM sites WHERE id = ANY($1::bigint[])", list(offered)
    )
    assert [r["company_id"] for r in owners] == [world.companies["A"]]
    assert cfg["report"] == "holdings"
    client.session.cookie_jar.clear()
    await cookie_login(client, "t_regulator")
    cfg = page_config(await (await client.get("/reports/holdings")).text())
    ids = {c["id"] for c in cfg["companies"]}
    assert {world.companies["A"], world.companies["B"]} <= ids
    assert {world.sites["STA-A1"], world.sites["STA-B1"]} <= {s["id"] for s in cfg["stations"]}


async def test_the_page_gets_the_query_parameters_of_its_report_route(client: Any) -> None:
    """The route's own parameters (what a report not yet in the frame is downloaded with):
    dates for an activity report, none for today's compliance."""
    await cookie_login(client, "t_regulator")
    cfg = page_config(await (await client.get("/reports/fills-daily")).text())
    assert {"district", "company", "from", "to"} <= set(cfg["params"])
    cfg = page_config(await (await client.get("/reports/compliance-summary")).text())
    assert "from" not in cfg["params"]


async def test_district_shapes_for_the_choropleth(client: Any, world: World) -> None:
    await cookie_login(client, "t_company_b")
    resp = await client.get("/reports/data/districts")
    assert resp.status == 200
    fc = await resp.json()
    assert fc["type"] == "FeatureCollection"
    codes = {f["properties"]["code"] for f in fc["features"]}
    assert set(world.districts) <= codes
    f = next(f for f in fc["features"] if f["properties"]["code"] == world.districts[0])
    assert f["geometry"]["type"] == "Polygon"
