"""The customer's share link to a rectification notice (docs/API.md "Safety inspections";
server/api/safety_share.py): the link opens the notice without a login and shows only what to
fix; an expired, altered or moved token is refused without data; only those who may see the
record may make a link, and making one is audited."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from server.api.customers import id_hash_key
from server.domain.safety_share import make_token, share_key
from server.kernel.appkeys import POOL
from tests.api.conftest import call
from tests.api.test_safety_inspections import catalogue, failing_record, form, jpeg, png, submit
from tests.conftest import World

PUBLIC = "/api/v1/public/safety-notices/"


async def _failed_record(client: Any, world: World) -> int:
    rec, _ = failing_record(await catalogue(client), world)
    status, out = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    assert status == 201, out
    return int(out["id"])


async def _link(client: Any, rid: int, user: str = "t_company_a") -> tuple[int, Any]:
    return await call(client, "GET", f"/api/v1/safety-inspections/{rid}/notice-link", user)


def _token(url: str) -> str:
    path = urlparse(url).path
    assert path.startswith("/n/"), url
    return path.removeprefix("/n/")


async def test_the_link_opens_the_notice_without_login(
    client: Any, pool: Any, world: World
) -> None:
    rid = await _failed_record(client, world)
    status, link = await _link(client, rid)
    assert status == 200, link
    assert link["expires"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    status, notice = await call(client, "GET", PUBLIC + _token(link["url"]), "anonymous")
    assert status == 200, notice
    assert notice["inspection_id"] == rid
    assert notice["customer"] == {"name": "客户A"}
    assert set(notice["company"]) == {"name", "order_phone"}
    assert [i["code"] for i in notice["items"]] == ["valve_no_leak"]
    assert notice["items"][0]["deadline"] and notice["items"][0]["state"] == "open"
    text = str(notice)
    for private in ("13800000000", "410105********1234", "测试路1号", "CUST-A"):
        assert private not in text
    audited = await pool.fetchval(
        """SELECT count(*) FROM audit_log WHERE action = 'safety_notice.share'
            AND entity = 'safety_inspection' AND entity_id = $1""",
        str(rid),
    )
    assert audited == 1


async def test_expired_tampered_and_moved_tokens_are_refused(client: Any, world: World) -> None:
    rid = await _failed_record(client, world)
    other = await _failed_record(client, world)
    _, link = await _link(client, rid)
    token = _token(link["url"])
    key = share_key(await id_hash_key(client.server.app, client.server.app[POOL]))

    expired = make_token(key, rid, int(time.time()) - 1)
    status, err = await call(client, "GET", PUBLIC + expired, "anonymous")
    assert status == 404 and err["error"]["details"] == {"reason": "expired"}, err
    assert "items" not in err

    _, exp, tag = token.split(".")
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    refused = [
        f"{rid}.{exp}.{flipped}",  # the tag altered
        f"{other}.{exp}.{tag}",  # another inspection's id with this token
        f"{rid}.{int(exp) + 86400}.{tag}",  # the expiry stretched
        make_token(b"not the install's secret", rid, int(exp)),  # forged with another key
        "garbage",
    ]
    for bad in refused:
        status, err = await call(client, "GET", PUBLIC + bad, "anonymous")
        assert status == 404 and err["error"]["details"] == {"reason": "invalid"}, bad
    status, ok = await call(client, "GET", PUBLIC + token, "anonymous")
    assert status == 200 and ok["inspection_id"] == rid


async def test_only_who_sees_the_record_makes_a_link(client: Any, pool: Any, world: World) -> None:
    rid = await _failed_record(client, world)
    expect = {
        "t_admin": 200,
        "t_regulator_jinshui": 200,
        "t_officer": 200,
        "t_company_a": 200,
        "t_operator_a": 200,
        "t_company_b": 404,
        "t_inspector": 403,
        "anonymous": 401,
    }
    for user, code in expect.items():
        status, _ = await _link(client, rid, user)
        assert status == code, user
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'safety_notice.share' AND entity_id = $1",
        str(rid),
    )
    assert audited == 5
