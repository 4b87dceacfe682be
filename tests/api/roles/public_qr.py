"""Matrix rows of the public QR page's additions (server/api/public.py, server/api/labels.py).

QR images and fault reports are the public's: every role, and nobody, gets the same answer. The
label sheet is for those who stick labels on cylinders — the admin, the owner company's admin
(company B's admin does not find company A's cylinder: 404) and an inspection agency; the
bureau's watchers and a station operator are refused (403).
"""

from __future__ import annotations

import io

from PIL import Image

from tests.api.roles import Case

_BOUNDARY = "cylwatch-role-walk"


def _fault_body() -> bytes:
    """A multipart fault report with a small PNG, as the QR page sends it."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buf, "PNG")
    parts = [
        ("code", None, b"BC-TAG-A-OK"),
        ("text", None, "阀门漏气".encode()),
        ("photo", "valve.png", buf.getvalue()),
    ]
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = b"Content-Type: image/png\r\n" if filename else b""
        out += (
            f"--{_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
            + ctype
            + b"\r\n"
            + data
            + b"\r\n"
        )
    return out + f"--{_BOUNDARY}--\r\n".encode()


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "public.qr_svg": Case(
        "GET",
        "/api/v1/public/cylinders/BC-TAG-A-OK/qr.svg",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        route="/api/v1/public/cylinders/{code}/qr.svg",
    ),
    "public.qr_png": Case(
        "GET",
        "/api/v1/public/cylinders/BC-TAG-A-OK/qr.png",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        route="/api/v1/public/cylinders/{code}/qr.png",
    ),
    "public.fault": Case(
        "POST",
        "/api/v1/public/faults",
        (201, 201, 201, 201, 201, 201, 201, 201, 201),
        raw=(_fault_body(), f"multipart/form-data; boundary={_BOUNDARY}"),
    ),
    "cylinders.labels": Case(
        "GET",
        "/api/v1/cylinders/labels.pdf?ids={cyl_a}",
        (200, 403, 403, 403, 200, 404, 403, 200, 401),
        route="/api/v1/cylinders/labels.pdf",
    ),
}
