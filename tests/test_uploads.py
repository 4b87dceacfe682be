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


async def test_sweep_removes_old_orphans_only(pool: Any, tmp_path: Path) -> None:
    """A refused submission's bytes (a file, no row) go once past the grace period; a file with
    a row, a young orphan and anything not at a content address stay."""
    import datetime as dt
    import hashlib
    import os
    import time

    r = rules(tmp_path)
    async with pool.acquire() as conn, conn.transaction():
        kept = await uploads.store(conn, r, b"%PDF-1.4 kept", purpose="test")
    root = uploads.root_dir(r)
    kept_path = root / kept.sha256[:2] / kept.sha256[2:4] / kept.sha256

    def orphan(data: bytes) -> Path:
        digest = hashlib.sha256(data).hexdigest()
        path = root / digest[:2] / digest[2:4] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    old_orphan, young_orphan = orphan(b"refused photo"), orphan(b"in flight")
    stray = root / "ab" / "cd" / "notes.txt"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not an upload")
    half = kept_path.parent / ".up-crashed"
    half.write_bytes(b"half")
    day_ago = time.time() - 86400
    for path in (kept_path, old_orphan, stray, half):
        os.utime(path, (day_ago, day_ago))
    grace = dt.timedelta(hours=1)
    assert set(await uploads.sweep_orphans(pool, r, grace, dry_run=True)) == {old_orphan, half}
    assert old_orphan.exists()
    assert set(await uploads.sweep_orphans(pool, r, grace)) == {old_orphan, half}
    assert not old_orphan.exists() and not half.exists()
    assert kept_path.exists() and young_orphan.exists() and stray.exists()
    _, data = await uploads.read_verified(pool, r, kept.id)
    assert data == b"%PDF-1.4 kept"
    with pytest.raises(ValueError):
        await uploads.sweep_orphans(pool, r, dt.timedelta(seconds=5))


async def test_a_reused_file_is_young_again(pool: Any, tmp_path: Path) -> None:
    """An orphan taken again by a new upload is not swept under it: storing refreshes its time."""
    import datetime as dt
    import os
    import time

    r = rules(tmp_path)
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        f = await uploads.store(conn, r, b"%PDF-1.4 twice", purpose="test")
        await tr.rollback()  # refused: the bytes stay, no row
    path = uploads.root_dir(r) / f.sha256[:2] / f.sha256[2:4] / f.sha256
    day_ago = time.time() - 86400
    os.utime(path, (day_ago, day_ago))
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await uploads.store(conn, r, b"%PDF-1.4 twice", purpose="test")  # not yet committed
        assert await uploads.sweep_orphans(pool, r, dt.timedelta(hours=1)) == []
        await tr.commit()
    assert path.exists()
