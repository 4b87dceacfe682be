"""The public QR page's API (issue 13, item 6): the site-level trajectory, the order phone's
``tel:`` link, the company's notice, the fault report with a photo, QR images and the A4
label sheet (server/api/public.py, server/api/labels.py, server/api/label_sheet.py).

QR codes are read back by an independent decoder (zxing-cpp), never by the encoder that made
them: the PNG as it is, the PDF's codes after drawing its filled rectangles into a bitmap.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import uuid
from typing import Any

import aiohttp
import pytest
import segno
import zxingcpp
from PIL import Image, ImageDraw
from pypdf import PdfReader
from pypdf.generic import ContentStream

from server.api.label_sheet import MAX_LABELS, PER_SHEET
from server.api.public import RATE_PREFIX, TRAJECTORY_STEPS, WINDOW_S
from server.domain.localtime import city_date
from server.kernel.appkeys import REDIS, SETTINGS
from tests.api.conftest import Fresh, call, unique
from tests.conftest import World

TICKET = re.compile(r"^[2-9A-HJ-NP-Z]{12}$")


def _base(client: Any) -> str:
    return str(client.server.app[SETTINGS].http.base_url).rstrip("/")


async def _barcode(pool: Any, cid: int) -> str:
    return str(await pool.fetchval("SELECT barcode FROM cylinders WHERE id = $1", cid))


async def _company(pool: Any, **over: Any) -> int:
    values = {"code": unique("CO"), "name": f"扫码测试燃气{unique('N')}", "district_code": "410105"}
    values.update(over)
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    return int(
        await pool.fetchval(
            f"INSERT INTO companies ({cols}) VALUES ({marks}) RETURNING id", *values.values()
        )
    )


async def _event(
    pool: Any, cid: int, kind: str, ts: dt.datetime, site: int | None, company: int, **over: Any
) -> None:
    values: dict[str, Any] = {
        "ts": ts,
        "msg_id": uuid.uuid4().hex,
        "cylinder_id": cid,
        "tag": "TAG-SECRET-" + uuid.uuid4().hex[:6],
        "kind": kind,
        "site_id": site,
        "company_id": company,
    }
    values.update(over)
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO events ({cols}) VALUES ({marks})", *values.values())


# ---------------------------------------------------------------- trajectory


async def test_trajectory_is_site_level_and_newest_first(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    code = await _barcode(pool, cid)
    a = world.companies["A"]
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    station, agency = world.sites["STA-A1"], world.sites["INS-1"]
    await _event(pool, cid, "register", now - 9 * day, agency, a, operator="登记员赵六")
    await _event(
        pool,
        cid,
        "fill",
        now - 5 * day,
        station,
        a,
        operator="操作员王五",
        device_id="GUN-STA-A1",
        lat=34.8123,
        lon=113.6543,
        details={"net_kg": 14.5, "operator_phone": "13900000000"},
    )
    await _event(pool, cid, "fill_refused", now - 4 * day, station, a)  # not the public's
    await _event(
        pool,
        cid,
        "deliver",
        now - 3 * day,
        world.sites["STA-B1"],  # handed over by company B's site: "delivered by B"
        a,
        customer_id=world.customers["A"],
        operator="送气工张师傅",
        lat=34.8001,
        lon=113.6002,
        details={"customer": "CUST-A"},
    )
    await _event(pool, cid, "status_change", now - 2 * day, None, a)  # not the public's
    await _event(pool, cid, "inspection", now - day, agency, a)
    status, body = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
    assert status == 200, body
    steps = body["trajectory"]
    assert [s["step"] for s in steps] == ["inspection", "deliver", "fill", "register"]
    for s in steps:
        assert set(s) == {"date", "step", "site", "company"}
    assert steps[1]["site"] == "站点STA-B1" and steps[1]["company"] == "测试燃气B公司"
    assert steps[2]["site"] == "站点STA-A1" and steps[2]["company"] == "测试燃气A公司"
    # the agency's site has no company: the event's company (the owner) is named
    assert steps[0]["site"] == "站点INS-1" and steps[0]["company"] == "测试燃气A公司"
    city = client.server.app[SETTINGS].alerts
    assert steps[2]["date"] == city_date(now - 5 * day, city).isoformat()
    text = str(body)
    for secret in (
        "客户A",
        "CUST-A",
        "13800000000",
        "13900000000",
        "测试路1号",
        "王五",
        "张师傅",
        "赵六",
        "GUN-STA-A1",
        "34.8",
        "113.6",
        "TAG-SECRET",
        "customer",
        "operator",
    ):
        assert secret not in text, secret


async def test_trajectory_keeps_only_the_last_steps(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    code = await _barcode(pool, cid)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    for i in range(TRAJECTORY_STEPS + 5):
        await _event(
            pool,
            cid,
            "fill" if i % 2 else "dispatch",
            start + dt.timedelta(days=i),
            world.sites["STA-A1"],
            world.companies["A"],
        )
    status, body = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
    assert status == 200
    steps = body["trajectory"]
    assert len(steps) == TRAJECTORY_STEPS
    dates = [s["date"] for s in steps]
    assert dates == sorted(dates, reverse=True)
    newest = start + dt.timedelta(days=TRAJECTORY_STEPS + 4)
    assert dates[0] == city_date(newest, client.server.app[SETTINGS].alerts).isoformat()
    # a cylinder with no events: an empty list, not null
    other = await fresh.cylinder("A")
    status, body = await call(
        client, "GET", f"/api/v1/public/cylinders/{await _barcode(pool, other)}", "anonymous"
    )
    assert body["trajectory"] == []


# ---------------------------------------------------------------- order phone and notice


async def test_order_phone_is_a_tel_link(client: Any, pool: Any, fresh: Fresh) -> None:
    company = await _company(pool, order_phone="0371-6666 8888")
    cid = await fresh.cylinder("A", owner_company_id=company)
    status, body = await call(
        client, "GET", f"/api/v1/public/cylinders/{await _barcode(pool, cid)}", "anonymous"
    )
    assert status == 200
    assert body["order_phone"] == "0371-6666 8888"
    assert body["order_tel"] == "tel:037166668888"
    await pool.execute(
        "UPDATE companies SET order_phone = '+86 (371) 6666-8888' WHERE id = $1", company
    )
    _, body = await call(
        client, "GET", f"/api/v1/public/cylinders/{await _barcode(pool, cid)}", "anonymous"
    )
    assert body["order_tel"] == "tel:+8637166668888"
    await pool.execute("UPDATE companies SET order_phone = NULL WHERE id = $1", company)
    _, body = await call(
        client, "GET", f"/api/v1/public/cylinders/{await _barcode(pool, cid)}", "anonymous"
    )
    assert body["order_phone"] is None and body["order_tel"] is None


async def test_company_notice_set_by_its_admin(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    a = world.companies["A"]
    cid = await fresh.cylinder("A")
    code = await _barcode(pool, cid)
    path = f"/api/v1/companies/{a}"
    try:
        status, body = await call(
            client,
            "PATCH",
            path,
            "t_company_a",
            {
                "notice_text": "<b>夏季</b>安全检查免费上门",
                "notice_url": "https://gas.example.com/x?a=1",
            },
        )
        assert status == 200, body
        assert body["notice_text"] == "<b>夏季</b>安全检查免费上门"
        _, pub = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
        # stored and answered as text: the page sets it as textContent, never as HTML
        assert pub["notice"] == {
            "text": "<b>夏季</b>安全检查免费上门",
            "url": "https://gas.example.com/x?a=1",
        }
        # another company's admin may not, a link must be a web address, a notice is short
        status, body = await call(client, "PATCH", path, "t_company_b", {"notice_text": "x"})
        assert status == 404, body
        for bad in (
            {"notice_url": "javascript:alert(1)"},
            {"notice_url": "data:text/html,x"},
            {"notice_url": "https://a b"},
            {"notice_text": "长" * 201},
            {"notice_text": ""},
        ):
            status, body = await call(client, "PATCH", path, "t_company_a", bad)
            assert status == 400, (bad, body)
            assert body["error"]["details"]["field"] == next(iter(bad)), body
        row = await pool.fetchrow("SELECT notice_text, notice_url FROM companies WHERE id = $1", a)
        assert row["notice_url"] == "https://gas.example.com/x?a=1"  # nothing half-written
        # a regulator does not write a company's notice
        status, _ = await call(client, "PATCH", path, "t_regulator", {"notice_text": "x"})
        assert status == 403
        status, body = await call(
            client, "PATCH", path, "t_company_a", {"notice_text": None, "notice_url": None}
        )
        assert status == 200
        _, pub = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
        assert pub["notice"] is None
    finally:
        await pool.execute(
            "UPDATE companies SET notice_text = NULL, notice_url = NULL WHERE id = $1", a
        )


# ---------------------------------------------------------------- fault report


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def _form(photo: bytes | None = None, ctype: str = "image/png", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for k, v in fields.items():
        form.add_field(k, v)
    if photo is not None:
        # a stream, as a browser sends a file (aiohttp refuses a bytes part over 1 MB)
        form.add_field("photo", io.BytesIO(photo), filename="valve.png", content_type=ctype)
    return form


async def _counts(pool: Any) -> tuple[int, int]:
    return (
        int(await pool.fetchval("SELECT count(*) FROM complaints")),
        int(await pool.fetchval("SELECT count(*) FROM uploads")),
    )


async def test_fault_report_with_a_photo_is_a_complaint_of_the_owner(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    code = await _barcode(pool, cid)
    form = _form(_png(), code=code, text="阀门漏气，有嘶嘶声", contact="王先生 13712345678")
    status, body = await call(client, "POST", "/api/v1/public/faults", "anonymous", data=form)
    assert status == 201, body
    assert TICKET.match(body["ticket"]), body
    assert body["ticket_display"].replace("-", "") == body["ticket"]
    assert body["kind"] == "fault" and body["photo"] is True and body["state"] == "new"
    assert body["track_url"].endswith(body["ticket"])
    # the ticket is followed like any complaint's
    status, track = await call(
        client, "GET", f"/api/v1/public/complaints/{body['ticket_display']}", "anonymous"
    )
    assert status == 200, track
    assert track["kind"] == "fault" and "王先生" not in str(track)
    row = await pool.fetchrow(
        """SELECT k.*, u.purpose, u.mime, u.uploaded_by FROM complaints k
             JOIN uploads u ON u.id = k.photo_upload_id WHERE k.ticket = $1""",
        body["ticket"],
    )
    assert row["kind"] == "fault" and row["source"] == "qr" and row["state"] == "new"
    assert row["cylinder_id"] == cid and row["company_id"] == world.companies["A"]
    assert row["district_code"] == "410105" and row["deadline"] is not None
    assert row["contact"] == "王先生 13712345678"
    assert row["purpose"] == "fault_photo" and row["mime"] == "image/png"
    assert row["uploaded_by"] is None
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM complaint_events WHERE complaint_id = $1 AND kind = 'filed'",
            row["id"],
        )
        == 1
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'complaint.create' AND entity_id = $1",
            str(row["id"]),
        )
        == 1
    )
    # without a photo, looked up by the RFID tag: the same owner
    tag = await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid)
    status, body = await call(
        client, "POST", "/api/v1/public/faults", "anonymous", data=_form(code=tag, text="胶管老化")
    )
    assert status == 201 and body["photo"] is False
    assert (
        await pool.fetchval("SELECT cylinder_id FROM complaints WHERE ticket = $1", body["ticket"])
        == cid
    )


async def test_fault_report_refusals_write_nothing(client: Any, pool: Any, fresh: Fresh) -> None:
    code = await _barcode(pool, await fresh.cylinder("A"))
    before = await _counts(pool)
    huge = b"\xff\xd8\xff\xe0" + b"\0" * (20 * 1024 * 1024)  # a 20 MB "JPEG"
    cases: list[tuple[aiohttp.FormData, int, str, str]] = [
        (_form(huge, "image/jpeg", code=code, text="漏气"), 413, "payload_too_large", "photo"),
        (
            _form(b"#!/bin/sh\necho hi\n", code=code, text="漏气"),
            415,
            "unsupported_media_type",
            "photo",
        ),
        (
            _form(b"%PDF-1.4\n%%EOF\n", "application/pdf", code=code, text="漏气"),
            415,
            "unsupported_media_type",
            "photo",
        ),
        (_form(b"\x89PNG\r\n\x1a\nbroken", code=code, text="漏气"), 400, "invalid_field", "photo"),
        (_form(_png(), code="NO-SUCH-CODE", text="漏气"), 404, "not_found", ""),
        (_form(_png(), code=code, text="   "), 400, "invalid_field", "text"),
        (_form(_png(), text="漏气"), 400, "invalid_field", "code"),
        (_form(_png(), code=code, text="长" * 5000), 400, "invalid_field", "text"),
        (_form(_png(), code=code, text="漏气", contact="1" * 101), 400, "invalid_field", "contact"),
        (_form(_png(), code=code, text="漏气", severity="high"), 400, "invalid_field", "severity"),
        (_form(_png(), code=code, text="漏\x00气"), 400, "invalid_field", "text"),
    ]
    for form, want, err, field in cases:
        status, body = await call(client, "POST", "/api/v1/public/faults", "anonymous", data=form)
        assert status == want, (want, body)
        assert set(body) == {"error"} and body["error"]["code"] == err, body
        if field:
            assert body["error"]["details"]["field"] == field, body
    # two photos, or JSON instead of a form
    two = _form(_png(), code=code, text="漏气")
    two.add_field("photo", _png(), filename="b.png", content_type="image/png")
    status, body = await call(client, "POST", "/api/v1/public/faults", "anonymous", data=two)
    assert status == 400 and body["error"]["details"]["field"] == "photo"
    status, body = await call(
        client, "POST", "/api/v1/public/faults", "anonymous", {"code": code, "text": "漏气"}
    )
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    assert await _counts(pool) == before


async def test_fault_reports_are_rate_limited(client: Any, pool: Any, fresh: Fresh) -> None:
    code = await _barcode(pool, await fresh.cylinder("A"))
    limit = client.server.app[SETTINGS].public.rate_limit_per_min
    status, _ = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
    assert status == 200
    # this minute's budget (and the next one's, should the minute turn now) is spent, as
    # `limit` scans would spend it (tests/api/test_public_reports.py counts them one by one)
    redis = client.server.app[REDIS]
    window = int(time.time() // WINDOW_S)
    for w in (window, window + 1):
        await redis.set(f"{RATE_PREFIX}127.0.0.1:{w}", limit, ex=3 * WINDOW_S)
    before = await _counts(pool)
    status, body = await call(
        client,
        "POST",
        "/api/v1/public/faults",
        "anonymous",
        data=_form(_png(), code=code, text="漏气"),
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert await _counts(pool) == before
    status, _ = await call(client, "GET", f"/api/v1/public/cylinders/{code}/qr.png", "anonymous")
    assert status == 429


# ---------------------------------------------------------------- QR images


def _decode(img: Image.Image) -> list[str]:
    return sorted(r.text for r in zxingcpp.read_barcodes(img))


async def test_qr_images_encode_the_public_url_never_the_tag(
    client: Any, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    code = await _barcode(pool, cid)
    tag = str(await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid))
    url = f"{_base(client)}/q/{code}"
    resp = await client.get(f"/api/v1/public/cylinders/{code}/qr.png")
    assert resp.status == 200 and resp.content_type == "image/png"
    png = await resp.read()
    assert _decode(Image.open(io.BytesIO(png))) == [url]
    assert "public" in resp.headers["Cache-Control"] and "max-age" in resp.headers["Cache-Control"]
    etag = resp.headers["ETag"]
    again = await client.get(
        f"/api/v1/public/cylinders/{code}/qr.png", headers={"If-None-Match": etag}
    )
    assert again.status == 304 and await again.read() == b""
    # asked by its tag: the same code — the tag is never in the image
    by_tag = await client.get(f"/api/v1/public/cylinders/{tag}/qr.png")
    assert by_tag.status == 200 and await by_tag.read() == png
    svg_resp = await client.get(f"/api/v1/public/cylinders/{tag}/qr.svg")
    assert svg_resp.status == 200 and svg_resp.content_type == "image/svg+xml"
    svg = (await svg_resp.read()).decode()
    assert svg.lstrip().startswith("<svg") and tag not in svg
    assert svg_resp.headers["ETag"] != etag
    # the SVG is the code of the URL: the same drawing segno makes of it, and of nothing else
    expected = io.BytesIO()
    segno.make(url, error="q", micro=False).save(expected, kind="svg", border=4, xmldecl=False)
    assert svg == expected.getvalue().decode()
    wrong = io.BytesIO()
    segno.make(f"{_base(client)}/q/{tag}", error="q", micro=False).save(
        wrong, kind="svg", border=4, xmldecl=False
    )
    assert svg != wrong.getvalue().decode()


async def test_qr_images_not_found(client: Any, pool: Any, fresh: Fresh) -> None:
    for path in (
        "/api/v1/public/cylinders/NO-SUCH/qr.png",
        "/api/v1/public/cylinders/NO-SUCH/qr.svg",
        "/api/v1/public/cylinders/%3Cscript%3E/qr.svg",
    ):
        status, body = await call(client, "GET", path, "anonymous")
        assert status == 404 and body["error"]["code"] == "not_found", body
    # a cylinder without a barcode has no public address to encode
    cid = await fresh.cylinder("A", barcode=None)
    tag = await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid)
    status, body = await call(client, "GET", f"/api/v1/public/cylinders/{tag}/qr.png", "anonymous")
    assert status == 404 and "barcode" in body["error"]["message"]
    status, body = await call(
        client, "GET", "/api/v1/public/cylinders/BC-TAG-A-OK/qr.png?size=9", "anonymous"
    )
    assert status == 400 and body["error"]["code"] == "invalid_query"


# ---------------------------------------------------------------- the label sheet


def _page_image(page: Any, reader: PdfReader, scale: float = 4.0) -> Image.Image:
    """The page's filled rectangles (the QR modules) drawn into a bitmap: enough of a PDF
    renderer to let a decoder read the codes, without one installed."""
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    img = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(img)
    ctm: tuple[float, ...] = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    stack: list[tuple[float, ...]] = []
    rects: list[tuple[float, float, float, float]] = []

    def apply(m: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
        return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]

    for operands, op in ContentStream(page.get_contents(), reader).operations:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            a, b, c, d, e, f = (float(v) for v in operands)
            m = ctm
            ctm = (
                a * m[0] + b * m[2],
                a * m[1] + b * m[3],
                c * m[0] + d * m[2],
                c * m[1] + d * m[3],
                e * m[0] + f * m[2] + m[4],
                e * m[1] + f * m[3] + m[5],
            )
        elif op == b"re":
            x, y, w, h = (float(v) for v in operands)
            (x0, y0), (x1, y1) = apply(ctm, x, y), apply(ctm, x + w, y + h)
            rects.append((x0, y0, x1, y1))
        elif op in (b"f", b"f*", b"F"):
            for x0, y0, x1, y1 in rects:
                box = [
                    (min(x0, x1) * scale, (height - max(y0, y1)) * scale),
                    (max(x0, x1) * scale, (height - min(y0, y1)) * scale),
                ]
                draw.rectangle(box, fill=0)
            rects = []
        elif op in (b"S", b"s", b"n", b"B", b"b"):
            rects = []
    return img


async def _label_cylinders(
    pool: Any, fresh: Fresh, n: int, prefix: str, owner: str = "A"
) -> list[int]:
    return [
        await fresh.cylinder(owner, barcode=f"{prefix}-{i:03d}", spec="YSP35.5") for i in range(n)
    ]


async def test_label_sheet_pages_text_and_codes(client: Any, pool: Any, fresh: Fresh) -> None:
    prefix = unique("LB")
    n = PER_SHEET + 2  # two sheets, the second with two labels
    ids = await _label_cylinders(pool, fresh, n, prefix)
    path = f"/api/v1/cylinders/labels.pdf?ids={','.join(map(str, ids))}"
    resp = await client.get(path, headers=await _auth(client, "t_company_a"))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    assert resp.headers["X-Labels"] == str(n) and resp.headers["X-Labels-Skipped"] == "0"
    reader = PdfReader(io.BytesIO(await resp.read()))
    assert len(reader.pages) == 2
    text = "".join(p.extract_text() for p in reader.pages)
    barcodes = [f"{prefix}-{i:03d}" for i in range(n)]
    for code in barcodes:
        assert code in text
    assert "YSP35.5" in text
    found: list[str] = []
    for page in reader.pages:
        found += _decode(_page_image(page, reader))
    assert sorted(found) == sorted(f"{_base(client)}/q/{c}" for c in barcodes)
    # the first sheet is full, the second holds the rest
    assert len(_decode(_page_image(reader.pages[1], reader))) == 2


async def _auth(client: Any, user: str) -> dict[str, str]:
    from tests.api.conftest import headers_for

    return await headers_for(client, user)


async def test_label_sheet_scope_filters_and_limits(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    prefix = unique("LS")
    a_ids = await _label_cylinders(pool, fresh, 3, prefix)
    b_ids = await _label_cylinders(pool, fresh, 2, prefix + "-B", owner="B")
    no_barcode = await fresh.cylinder("A", barcode=None, stamp=prefix + "-NB")
    # the search's filters, scoped in SQL: company A's admin gets A's labels only
    status, body = await call(
        client, "GET", f"/api/v1/cylinders/labels.pdf?q={prefix}", "t_company_a"
    )
    assert status == 200
    reader = PdfReader(io.BytesIO(body))
    found = _decode(_page_image(reader.pages[0], reader))
    assert found == [f"{_base(client)}/q/{prefix}-{i:03d}" for i in range(3)]
    # the admin sees both companies'; the cylinder without a barcode is counted, not printed
    resp = await client.get(
        f"/api/v1/cylinders/labels.pdf?q={prefix}", headers=await _auth(client, "t_admin")
    )
    assert resp.status == 200 and resp.headers["X-Labels"] == "5"
    resp = await client.get(
        f"/api/v1/cylinders/labels.pdf?ids={a_ids[0]},{no_barcode}",
        headers=await _auth(client, "t_admin"),
    )
    assert resp.headers["X-Labels"] == "1" and resp.headers["X-Labels-Skipped"] == "1"
    # an id outside the scope is not found (existence not revealed), nothing printed
    status, body = await call(
        client, "GET", f"/api/v1/cylinders/labels.pdf?ids={a_ids[0]},{b_ids[0]}", "t_company_a"
    )
    assert status == 404 and body["error"]["details"]["ids"] == [b_ids[0]]
    status, body = await call(
        client, "GET", f"/api/v1/cylinders/labels.pdf?ids={no_barcode}", "t_admin"
    )
    assert status == 404 and body["error"]["code"] == "not_found"
    # other filters, combined
    status, body = await call(
        client,
        "GET",
        f"/api/v1/cylinders/labels.pdf?q={prefix}&company=TEST-B&status=in_service&district=410103",
        "t_admin",
    )
    assert status == 200 and len(PdfReader(io.BytesIO(body)).pages) == 1
    # bad input: one error shape
    for query, field in (
        ("ids=1,x", "ids"),
        ("ids=0", "ids"),
        ("ids=" + ",".join(str(i) for i in range(1, MAX_LABELS + 2)), "ids"),
        ("status=nonsense", "status"),
        ("nonsense=1", "nonsense"),
        ("district=41", "district"),
    ):
        status, body = await call(client, "GET", f"/api/v1/cylinders/labels.pdf?{query}", "t_admin")
        assert status == 400, (query, body)
        assert (
            body["error"]["code"] == "invalid_query" and body["error"]["details"]["field"] == field
        )


async def test_label_sheet_refuses_more_than_the_maximum(
    client: Any, world: World, pool: Any
) -> None:
    prefix = unique("LM")
    w = world
    rows = [
        (
            unique("LMT"),
            f"{prefix}-{i:04d}",
            w.companies["A"],
            "YSP35.5",
            w.today - dt.timedelta(days=100),
            w.today + dt.timedelta(days=600),
            w.today + dt.timedelta(days=3000),
            "410105",
        )
        for i in range(MAX_LABELS + 1)
    ]
    await pool.executemany(
        """INSERT INTO cylinders (tag, barcode, owner_company_id, spec, manufacture_date,
                                  next_inspection_date, scrap_date, district_code)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        rows,
    )
    status, body = await call(
        client, "GET", f"/api/v1/cylinders/labels.pdf?q={prefix}", "t_company_a"
    )
    assert status == 400, body
    assert body["error"]["details"]["max"] == MAX_LABELS


@pytest.mark.parametrize("user", ["t_regulator", "t_officer", "t_operator_a"])
async def test_label_sheet_is_not_for_watchers(client: Any, user: str) -> None:
    status, body = await call(client, "GET", "/api/v1/cylinders/labels.pdf?q=BC-", user)
    assert status == 403 and body["error"]["code"] == "forbidden"
