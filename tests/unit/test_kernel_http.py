"""The kernel's query and path checks (server.kernel.http): one rule each, no service needed."""

from __future__ import annotations

import msgspec
import pytest
from aiohttp.test_utils import make_mocked_request

from server.kernel.errors import ApiError
from server.kernel.http import ID_MAX, field_from_msgspec, path_int, q_district, q_id


@pytest.mark.parametrize("raw", ["1", "42", str(ID_MAX)])
def test_q_id_takes_every_bigint_id(raw: str) -> None:
    assert q_id(make_mocked_request("GET", f"/x?company={raw}"), "company") == int(raw)


@pytest.mark.parametrize("raw", ["0", "-1", str(ID_MAX + 1), "1.5", "abc"])
def test_q_id_refuses_what_names_no_row(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        q_id(make_mocked_request("GET", f"/x?company={raw}"), "company")
    assert err.value.status == 400
    assert err.value.details == {"field": "company"}


def test_q_id_absent_or_empty_is_no_filter() -> None:
    assert q_id(make_mocked_request("GET", "/x"), "company") is None
    assert q_id(make_mocked_request("GET", "/x?company="), "company") is None


def test_q_district() -> None:
    assert q_district(make_mocked_request("GET", "/x?district=410105")) == "410105"
    assert q_district(make_mocked_request("GET", "/x")) is None
    with pytest.raises(ApiError) as err:
        q_district(make_mocked_request("GET", "/x?district=4101"))
    assert err.value.status == 400
    assert "6-digit" in err.value.message


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("7", True), (str(ID_MAX), True), ("0", False), (str(ID_MAX + 1), False), ("x", False)],
)
def test_path_int_answers_404_outside_the_id_range(raw: str, ok: bool) -> None:
    request = make_mocked_request("GET", f"/api/v1/sites/{raw}", match_info={"id": raw})
    if ok:
        assert path_int(request) == int(raw)
        return
    with pytest.raises(ApiError) as err:
        path_int(request)
    assert err.value.status == 404


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    net_kg: float
    items: list[int]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (b'{"net_kg": "x", "items": []}', "net_kg"),
        (b'{"net_kg": 1, "items": [1, "a"]}', "items[1]"),
        (b'{"items": []}', "net_kg"),
        (b'{"net_kg": 1, "items": [], "extra": 1}', "extra"),
        (b"[]", "body"),
    ],
)
def test_field_from_msgspec_names_the_field(doc: bytes, field: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        msgspec.json.decode(doc, type=_Body)
    assert field_from_msgspec(str(err.value)) == field
    if field == "body":  # the websocket names the whole document "message"
        assert field_from_msgspec(str(err.value), whole="message") == "message"
