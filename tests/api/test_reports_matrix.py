"""Every framed report as every role (server.api.reports.SPECS: the archive's, the business
and the activity reports alike, whoever wrote them): 200 for the roles its spec names and 403
for the others (401 without credentials), in JSON and in CSV; and every count's drill-down,
with a one-row page so that the page's total is counted too, as each kind of scope that may
run it. Never a 5xx: a programming error in a report (inspection-due once gave the city-wide
regulator a 503, "the server expects 2 arguments for this query, 5 were passed") is found
here for every report, not by a fuzzer."""

from __future__ import annotations

from typing import Any

import pytest

from server.api.reports import SPECS
from tests.api.conftest import ANON, call
from tests.conftest import ROLE_USERS, World

USERS = (*ROLE_USERS, ANON)
DRILL_USERS = ("t_admin", "t_regulator", "t_officer", "t_company_a", "t_inspector")
"""One user of each kind of scope: all, the city, some districts, one company, an agency."""


def _expected(spec_roles: tuple[str, ...], user: str) -> int:
    if user == ANON:
        return 401
    return 200 if ROLE_USERS[user][0] in spec_roles else 403


@pytest.mark.parametrize("name", [s.name for s in SPECS])
async def test_every_role_runs_or_is_refused(client: Any, world: World, name: str) -> None:
    del world
    spec = next(s for s in SPECS if s.name == name)
    for user in USERS:
        want = _expected(spec.roles, user)
        # a one-row page: a report that pages a list beside its rows counts its total too
        status, body = await call(client, "GET", f"/api/v1/reports/{name}?page_size=1", user)
        assert status == want, (user, body)
        if status == 200:
            assert body["report"] == name
            assert [c["key"] for c in body["columns"]] == [c.key for c in spec.columns]
            for row in body["rows"]:
                assert set(row) >= {c.key for c in spec.columns}, row
        status, raw = await call(client, "GET", f"/api/v1/reports/{name}?format=csv", user)
        assert status == want, (user, "csv", raw[:300])
        if status == 200:
            assert raw.startswith(b"\xef\xbb\xbf")
        if "group" in spec.filters and want == 200:
            status, body = await call(client, "GET", f"/api/v1/reports/{name}?group=month", user)
            assert status == 200, (user, "group=month", body)


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.drill is not None])
async def test_every_drill_down_answers(client: Any, world: World, name: str) -> None:
    del world
    spec = next(s for s in SPECS if s.name == name)
    for user in DRILL_USERS:
        want = _expected(spec.roles, user)
        for col in spec.columns:
            if col.drill is None:
                continue
            path = f"/api/v1/reports/{name}/drill?measure={col.key}&page_size=1"
            status, body = await call(client, "GET", path, user)
            assert status == want, (user, col.key, body)
            if status == 200:
                assert body["target"] == col.drill
                assert body["total"] >= len(body["items"])
    status, _ = await call(
        client, "GET", f"/api/v1/reports/{name}/drill?measure={spec.columns[0].key}", ANON
    )
    assert status == 401
