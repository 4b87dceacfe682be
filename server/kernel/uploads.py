"""Files people upload — photos of a complaint or a fault, a notice's attachments, an article's
images and clips — stored on disk under ``[uploads] dir``, never in the database as blobs
(docs/ARCHITECTURE.md §3).

Why this shape:
- **Content-addressed.** A file is kept under its SHA-256 (``ab/cd/<hash>``) and the
  ``uploads`` row (migration 0130) records the hash, type, size and dimensions. Reading checks
  the hash again (:func:`read_verified`): a file changed or damaged on disk is refused, not
  served as evidence. The same bytes uploaded twice share one file.
- **The type is sniffed, not believed.** A declared ``image/png`` that is a script is refused;
  only the types of :data:`IMAGE_TYPES` and :data:`FILE_TYPES` are ever stored.
- **Images are re-encoded.** Pillow decodes the picture (a decompression bomb or a broken
  file is refused), scales it down to ``[uploads] image_max_side_px``, and writes it again
  without metadata — the EXIF block, with the phone's GPS position, is gone unless the
  caller keeps a position of its own. Decoding runs in a thread, off the event loop.
- **Orphans are swept, rows never.** :func:`store` writes the bytes before its row, so a
  submission refused after that (or a transaction rolled back) leaves a file no row names.
  :func:`sweep_orphans` (``cylwatch uploads sweep``) removes such files once they are older
  than a grace period; a file any ``uploads`` row names is never removed, and :func:`_write`
  refreshes a reused file's time so a file an upload in flight is taking again is young.
- **Served by the feature that owns the file.** Each feature checks that the caller may see
  the complaint, notice or article, then answers with :func:`file_response`, which forbids
  sniffing and scripts (a stored file is never run as a page).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from server.kernel import errors
from server.kernel.errors import ApiError
from server.kernel.settings import CONFIG_DIR

__all__ = [
    "FILE_TYPES",
    "GENERATED_TYPES",
    "IMAGE_TYPES",
    "REPORT_RUN",
    "StoredFile",
    "discard_report_files",
    "file_response",
    "read_multipart",
    "read_verified",
    "sniff",
    "store",
    "store_generated",
    "sweep_orphans",
]

IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/webp")
"""Pictures a phone takes or a page shows; anything else offered as an image is refused."""

FILE_TYPES: Final = (*IMAGE_TYPES, "application/pdf", "video/mp4")
"""Attachments of notices and articles: pictures, PDF documents, MP4 clips."""

_PIL_FORMAT: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
JPEG_QUALITY: Final = 85
"""Re-encoding quality: a phone photo of a rusty valve stays legible at a fraction of the size."""


@dataclass(frozen=True)
class StoredFile:
    """An ``uploads`` row: what was stored, where its bytes are, and who sent it."""

    id: int
    sha256: str
    mime: str
    size: int
    width: int | None
    height: int | None
    filename: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "mime": self.mime,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "filename": self.filename,
        }


GENERATED_TYPES: Final = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
"""Files the platform writes itself (a scheduled report's CSV or XLSX): never accepted from a
person, so they are not sniffed — their writer (``server.kernel.tabular``) is ours."""


def sniff(data: bytes) -> str | None:
    """The type the bytes really are (by their magic numbers), or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[4:8] == b"ftyp" and data[8:12] in (b"isom", b"mp41", b"mp42", b"avc1", b"iso2"):
        return "video/mp4"
    return None


def _decode(data: bytes, mime: str, max_pixels: int) -> Image.Image:
    """The picture in *data*, fully decoded, or ValueError (corrupt, too many pixels, animated,
    or not of the type its bytes claim)."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # beyond twice this Pillow refuses before decoding
    with warnings.catch_warnings():
        # between once and twice the limit Pillow only warns: make that a refusal too
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # a truncated or corrupt file fails here
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    raise ValueError(f"more than {max_pixels} pixels")
                if img.format != _PIL_FORMAT[mime]:
                    raise ValueError("the picture's content does not match its type")
                if getattr(img, "n_frames", 1) > 1:
                    raise ValueError("animated pictures are not accepted")
                img.load()
                return img.convert("RGB") if mime == "image/jpeg" else img.copy()
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
            OSError,
            SyntaxError,
        ) as exc:
            raise ValueError(f"not a readable picture: {exc}") from None


def _clean_image(data: bytes, mime: str, max_side: int, max_pixels: int) -> tuple[bytes, int, int]:
    """Decode, bound, scale down and re-encode a picture without its metadata (in a thread)."""
    img = _decode(data, mime, max_pixels)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    fmt = _PIL_FORMAT[mime]
    if fmt == "JPEG":
        img.save(buf, fmt, quality=JPEG_QUALITY, optimize=True)
    else:
        img.save(buf, fmt)  # Pillow writes no EXIF unless it is given one
    return buf.getvalue(), img.width, img.height


def _write(root: Path, digest: str, data: bytes) -> None:
    """Put *data* at its content address, atomically (a reader never sees half a file)."""
    target = root / digest[:2] / digest[2:4] / digest
    if target.exists():
        # the file is taken again: young again, so the orphan sweep leaves it to this upload
        try:
            os.utime(target)
            return
        except FileNotFoundError:  # swept a moment ago: write it again
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".up-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _path(root: Path, digest: str) -> Path:
    return root / digest[:2] / digest[2:4] / digest


def root_dir(rules: Any) -> Path:
    """``[uploads] dir``, a relative path taken from the project directory."""
    path = Path(rules.dir)
    return path if path.is_absolute() else CONFIG_DIR.parent / path


async def store(
    conn: Any,
    rules: Any,
    data: bytes,
    *,
    purpose: str,
    field: str = "file",
    images_only: bool = False,
    filename: str | None = None,
    uploaded_by: int | None = None,
) -> StoredFile:
    """Check, clean and keep *data*; the new ``uploads`` row (in the caller's transaction).

    *rules* is ``settings.uploads``. Refusals are the one error shape naming *field*: an
    unknown or disallowed type (415), too large (413), an unreadable picture (400).
    """
    mime = sniff(data)
    allowed = IMAGE_TYPES if images_only else FILE_TYPES
    if mime is None or mime not in allowed:
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            f"{field}: only {', '.join(allowed)} are accepted",
            {"field": field, "allowed": list(allowed)},
        )
    limit_mb = rules.image_max_mb if mime in IMAGE_TYPES else rules.file_max_mb
    if len(data) > limit_mb * 1024 * 1024:
        raise ApiError(
            413, errors.PAYLOAD_TOO_LARGE, f"{field}: at most {limit_mb} MB", {"field": field}
        )
    width = height = None
    if mime in IMAGE_TYPES:
        try:
            data, width, height = await asyncio.to_thread(
                _clean_image, data, mime, rules.image_max_side_px, rules.image_max_pixels
            )
        except ValueError as exc:
            raise errors.bad_field(field, str(exc)) from None
    digest = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(_write, root_dir(rules), digest, data)
    name = (filename or "").replace("/", "_").replace("\\", "_")[:200] or None
    row = await conn.fetchrow(
        """INSERT INTO uploads (sha256, mime, size, width, height, filename, purpose, uploaded_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
        digest,
        mime,
        len(data),
        width,
        height,
        name,
        purpose,
        uploaded_by,
    )
    return StoredFile(row["id"], digest, mime, len(data), width, height, name)


async def store_generated(
    conn: Any,
    rules: Any,
    data: bytes,
    *,
    mime: str,
    filename: str,
    purpose: str,
    owner: int | None = None,
) -> StoredFile:
    """Keep a file the platform wrote (one of GENERATED_TYPES) like an upload: on disk under
    its SHA-256, an ``uploads`` row in the caller's transaction, the hash checked on read."""
    if mime not in GENERATED_TYPES:
        raise ValueError(f"not a generated type: {mime}")
    digest = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(_write, root_dir(rules), digest, data)
    name = filename.replace("/", "_").replace("\\", "_")[:200]
    row = await conn.fetchrow(
        """INSERT INTO uploads (sha256, mime, size, filename, purpose, uploaded_by)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        digest,
        mime,
        len(data),
        name,
        purpose,
        owner,
    )
    return StoredFile(row["id"], digest, mime, len(data), None, None, name)


REPORT_RUN: Final = "report_run"
"""The purpose of a scheduled report's file: the only uploads a job may discard (old runs);
safety records' photos and signatures, articles' media and attachments are kept for good."""


async def discard_report_files(conn: Any, ids: list[int]) -> int:
    """Delete the ``uploads`` rows of old report runs' files that no inbox message still
    attaches; their bytes go with the next ``cylwatch uploads sweep`` (orphans)."""
    done = await conn.execute(
        """DELETE FROM uploads u WHERE u.id = ANY($1::bigint[]) AND u.purpose = 'report_run'
             AND NOT EXISTS (SELECT 1 FROM message_attachments m WHERE m.upload_id = u.id)""",
        ids,
    )
    return int(done.split()[-1])


async def read_verified(pool: Any, rules: Any, file_id: int) -> tuple[StoredFile, bytes]:
    """The file and its bytes, after checking them against the hash recorded at upload.

    404 when there is no such row or no file on disk; 500-class integrity error (logged with a
    reference by the error middleware) when the bytes no longer match their hash.
    """
    row = await pool.fetchrow(
        "SELECT id, sha256, mime, size, width, height, filename FROM uploads WHERE id = $1",
        file_id,
    )
    if row is None:
        raise errors.not_found("file")
    f = StoredFile(**dict(row.items()))
    try:
        data = await asyncio.to_thread(_path(root_dir(rules), f.sha256).read_bytes)
    except FileNotFoundError:
        raise errors.not_found("file") from None
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise RuntimeError(f"upload {f.id}: stored bytes do not match their SHA-256")
    return f, data


def file_response(f: StoredFile, data: bytes, *, download: bool = False) -> web.Response:
    """Serve a stored file: its sniffed type, never sniffed again, never run as a page."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{f.sha256}"',
    }
    if download or f.mime not in IMAGE_TYPES:
        from urllib.parse import quote

        name = f.filename or f"file-{f.id}"
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return web.Response(body=data, content_type=f.mime, headers=headers)


async def read_multipart(
    request: web.Request, max_bytes: int, *, files: tuple[str, ...], max_files: int = 10
) -> tuple[dict[str, str], list[tuple[str, str | None, bytes]]]:
    """A ``multipart/form-data`` body: its text fields and its files ``(field, filename,
    bytes)``, each file at most *max_bytes* (413 past it, the rest never read into memory)."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data",
            {"field": "Content-Type"},
        )
    reader = await request.multipart()
    fields: dict[str, str] = {}
    got: list[tuple[str, str | None, bytes]] = []
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise errors.bad_field("body", "nested multipart is not accepted")
        name = part.name or ""
        if name in files:
            if len(got) >= max_files:
                raise errors.bad_field(name, f"at most {max_files} files")
            buf = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                buf += chunk
                if len(buf) > max_bytes:
                    raise ApiError(
                        413,
                        errors.PAYLOAD_TOO_LARGE,
                        f"{name}: at most {max_bytes // (1024 * 1024)} MB",
                        {"field": name},
                    )
            got.append((name, part.filename, bytes(buf)))
        else:
            text = await part.text()
            if len(text) > 100_000:
                raise errors.bad_field(name, "too long")
            fields[name] = text
    return fields, got


_STORED_NAME: Final = re.compile(r"^[0-9a-f]{64}$")
_SWEEP_BATCH: Final = 1000
"""Hashes looked up per query (one round trip for a thousand files, a bounded array)."""


def _candidates(root: Path, cutoff: float) -> list[Path]:
    """Files under *root* at a content address (``ab/cd/<hash>``) or half-written temporary
    files (``.up-*``), last modified before *cutoff*; nothing else is ever a candidate."""
    out: list[Path] = []
    if not root.is_dir():
        return out
    for a in root.iterdir():
        if not (a.is_dir() and len(a.name) == 2):
            continue
        for b in a.iterdir():
            if not (b.is_dir() and len(b.name) == 2):
                continue
            for f in b.iterdir():
                named = (
                    _STORED_NAME.match(f.name) and f.name[:2] == a.name and f.name[2:4] == b.name
                )
                if not (named or f.name.startswith(".up-")) or not f.is_file():
                    continue
                if f.stat().st_mtime < cutoff:
                    out.append(f)
    return out


def _remove_if_old(path: Path, cutoff: float) -> bool:
    try:
        if path.stat().st_mtime >= cutoff:  # taken again since it was listed
            return False
        path.unlink()
        return True
    except FileNotFoundError:
        return False


async def sweep_orphans(
    db: Any, rules: Any, grace: dt.timedelta, *, dry_run: bool = False
) -> list[Path]:
    """Remove files under ``[uploads] dir`` older than *grace* that no ``uploads`` row names
    (the bytes of a refused submission, docs/ARCHITECTURE.md §3); the paths removed (or that
    would be, *dry_run*). A file whose hash any row records is never removed; *grace* must
    exceed the longest request, as an upload in flight has its file but not yet its row."""
    if grace < dt.timedelta(minutes=1):
        raise ValueError("grace must be at least a minute: uploads in flight have no row yet")
    root = root_dir(rules)
    cutoff = time.time() - grace.total_seconds()
    found = await asyncio.to_thread(_candidates, root, cutoff)
    orphans: list[Path] = [f for f in found if f.name.startswith(".up-")]
    stored = [f for f in found if not f.name.startswith(".up-")]
    for n in range(0, len(stored), _SWEEP_BATCH):
        batch = stored[n : n + _SWEEP_BATCH]
        rows = await db.fetch(
            "SELECT DISTINCT sha256 FROM uploads WHERE sha256 = ANY($1::text[])",
            [f.name for f in batch],
        )
        named = {r["sha256"] for r in rows}
        orphans += [f for f in batch if f.name not in named]
    if dry_run:
        return orphans
    removed = []
    for f in orphans:
        if await asyncio.to_thread(_remove_if_old, f, cutoff):
            removed.append(f)
    return removed
