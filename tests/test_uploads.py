"""Uploaded files (server.kernel.uploads): sniffed types, bounded sizes, pictures re-encoded
without their EXIF position, kept at their SHA-256 and refused when the disk copy changed."""

from __future__ import annotations

import io
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.kernel import uploads
from server.kernel.errors import ApiError


def rules(tmp_path: Path, **over: Any) -> Any:
    values = {
        "dir": str(tmp_path / "uploads"),
        "image_max_mb": 1,
        "file_max_mb": 2,
        "image_max_side_px": 64,
        "image_max_pixels": 4_000_000,
    }
    values.update(over)
    return types.SimpleNamespace(**values)


def jpeg_with_gps(size: tuple[int, int] = (200, 100)) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {2: (34.0, 45.0, 0.0), 4: (113.0, 39.0, 0.0)}  # GPSInfo: lat, lon
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


async def test_picture_is_scaled_stripped_and_kept_at_its_hash(pool: Any, tmp_path: Path) -> None:
    raw = jpeg_with_gps()
    assert b"PhoneMaker" in raw
    r = rules(tmp_path)
    async with pool.acquire() as conn, conn.transaction():
        f = await uploads.store(conn, r, raw, purpose="test", images_only=True, filename="a/b.jpg")
    assert f.mime == "image/jpeg" and (f.width, f.height) == (64, 32)
    assert f.filename == "a_b.jpg"
    got, data = await uploads.read_verified(pool, r, f.id)
    assert got.sha256 == f.sha256 and len(data) == f.size
    assert b"PhoneMaker" not in data and b"Exif" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert not img.getexif()
    # the same bytes again share the file
    async with pool.acquire() as conn, conn.transaction():
        g = await uploads.store(conn, r, raw, purpose="test", images_only=True)
    assert g.sha256 == f.sha256 and g.id != f.id


async def test_changed_file_on_disk_is_refused(pool: Any, tmp_path: Path) -> None:
    r = rules(tmp_path)
    async with pool.acquire() as conn, conn.transaction():
        f = await uploads.store(conn, r, b"%PDF-1.4\n%test\n", purpose="test")
    path = Path(r.dir) / f.sha256[:2] / f.sha256[2:4] / f.sha256
    path.write_bytes(b"%PDF-1.4\n%tampered\n")
    with pytest.raises(RuntimeError, match="do not match"):
        await uploads.read_verified(pool, r, f.id)


@pytest.mark.parametrize(
    ("data", "images_only", "status"),
    [
        (b"<script>alert(1)</script>", False, 415),  # a script is no file type of ours
        (b"%PDF-1.4\n", True, 415),  # a PDF where a picture is asked for
        (b"\xff\xd8\xff\xe0" + b"\0" * 100, True, 400),  # says JPEG, is not a picture
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024), True, 413),  # over image_max_mb
    ],
)
async def test_bad_uploads_get_the_error_shape_and_store_nothing(
    pool: Any, tmp_path: Path, data: bytes, images_only: bool, status: int
) -> None:
    r = rules(tmp_path)
    before = await pool.fetchval("SELECT count(*) FROM uploads")
    with pytest.raises(ApiError) as err:
        async with pool.acquire() as conn, conn.transaction():
            await uploads.store(conn, r, data, purpose="test", images_only=images_only)
    assert err.value.status == status
    assert await pool.fetchval("SELECT count(*) FROM uploads") == before
    assert not Path(r.dir).exists()  # nothing reached the disk either  # noqa: ASYNC240


async def test_decompression_bomb_is_refused(pool: Any, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("L", (1200, 1200)).save(buf, "PNG")  # 1.44 Mpx in a few KB: over the 1 Mpx cap
    r = rules(tmp_path, image_max_pixels=1_000_000)
    with pytest.raises(ApiError) as err:
        async with pool.acquire() as conn, conn.transaction():
            await uploads.store(conn, r, buf.getvalue(), purpose="test", images_only=True)
    assert err.value.status == 400


def test_sniff_knows_only_our_types() -> None:
    assert uploads.sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert uploads.sniff(b"\0\0\0\x18ftypisom") == "video/mp4"
    assert uploads.sniff(b"GIF89a") is None
    assert uploads.sniff(b"") is None
