"""The A4 label sheet of ``GET /api/v1/cylinders/labels.pdf`` (server.api.labels), drawn with
ReportLab (docs/ARCHITECTURE.md §8).

Layout: the common 24-up A4 label stock, 3 columns × 8 rows of 70 × 37 mm with no gaps, so
the sheet prints on plain paper (cut along the faint lines) or on stock. Each label: the QR
code on the left (vector squares: sharp at any printer's resolution, and a few bytes
each), and on the right a caption, the barcode as text (for a
person to type when the code will not scan), the owner and the model.

The owner's name is Chinese, and the 14 standard PDF fonts have no Chinese glyphs. The sheet
embeds (a subset of) a CJK TrueType font — WenQuanYi Zen Hei, which ``.ci/run`` and the
Debian package ``fonts-wqy-zenhei`` install — loaded once per process. Without it the sheet
falls back to the Adobe CID font STSong-Light, which PDF readers supply themselves: not
embedded, so a reader without Asian font support shows boxes, but the sheet is still made.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

__all__ = ["MAX_LABELS", "Label", "cjk_font", "render_sheet"]

log = logging.getLogger(__name__)

COLS: Final = 3
ROWS: Final = 8
LABEL_W: Final = 70 * mm
LABEL_H: Final = 37 * mm
PER_SHEET: Final = COLS * ROWS

MAX_LABELS: Final = 10 * PER_SHEET
"""240 labels, ten sheets: a print run a person checks sheet by sheet. Each QR code costs
~10 ms of pure-Python encoding (segno tries the eight masks and keeps the best, as ISO/IEC
18004 asks), so a full batch is ~3 s in a worker thread; a larger batch is several runs
(narrow the search by company, site or status)."""

PAD: Final = 2.5 * mm
QR_SIDE: Final = LABEL_H - 2 * PAD
"""32 mm: with the quiet zone, a code of 37 modules has modules of ~0.86 mm, read by any phone."""
QUIET_ZONE: Final = 4
"""Modules of white around the code, as ISO/IEC 18004 requires for a reader to find it."""

CJK_FONT_FILES: Final = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)
"""TrueType CJK fonts ReportLab can embed (CFF-based OpenType, such as Noto CJK, it cannot)."""
EMBEDDED_FONT: Final = "CylwatchCJK"
FALLBACK_FONT: Final = "STSong-Light"
MONO_FONT: Final = "Courier-Bold"
"""The barcode as text: ASCII in a font where 0/O and 1/l differ."""

CAPTION: Final = {
    "zh-CN": "扫码查询气瓶安全信息",
    "en": "Scan: cylinder safety info",
}

_font_lock = threading.Lock()


@dataclass(frozen=True)
class Label:
    barcode: str
    url: str
    owner: str
    spec: str
    medium: str | None


@functools.cache
def _load_cjk_font() -> str:
    for path in CJK_FONT_FILES:
        if not path.is_file():
            continue
        try:
            pdfmetrics.registerFont(TTFont(EMBEDDED_FONT, str(path), subfontIndex=0))
        except Exception as exc:  # a damaged or unsupported font file: try the next one
            log.warning("label sheet: cannot embed %s (%s)", path, exc)
            continue
        return EMBEDDED_FONT
    log.warning(
        "label sheet: no CJK TrueType font among %s; Chinese text uses %s (not embedded)",
        ", ".join(str(p) for p in CJK_FONT_FILES),
        FALLBACK_FONT,
    )
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


def cjk_font() -> str:
    """The registered font name for Chinese text (loading a 17 MB font once, thread-safely)."""
    with _font_lock:
        return _load_cjk_font()


def _draw_qr(c: Canvas, x: float, y: float, side: float, url: str, error: str) -> None:
    """The QR code of *url* as vector squares, quiet zone included, in a *side* square at
    (x, y). In module units (one unit a module, y downwards from the top row) each run of dark
    modules in a row is one ``re`` of one filled path, written as PDF operators directly:
    a code has some 300 runs, and ReportLab's per-number formatting of path.rect() would
    take longer than the encoding."""
    matrix = segno.make(url, error=error, micro=False).matrix
    n = len(matrix)
    unit = side / (n + 2 * QUIET_ZONE)
    ops: list[str] = []
    for r, row in enumerate(matrix):
        start = None
        for col, dark in enumerate((*row, 0)):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                ops.append(f"{start} {r} {col - start} 1 re")
                start = None
    c.saveState()
    c.setFillGray(0)
    # origin at the top-left module of the code, one unit per module, rows downwards
    c.transform(unit, 0, 0, -unit, x + QUIET_ZONE * unit, y + side - QUIET_ZONE * unit)
    c.addLiteral("\n".join(ops) + "\nf")
    c.restoreState()


def _fit(text: str, font: str, size: float, width: float, smallest: float = 5.0) -> float:
    """The largest font size up to *size* at which *text* fits *width* (down to *smallest*)."""
    while size > smallest and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def _clip(text: str, font: str, size: float, width: float) -> str:
    """*text* cut with an ellipsis to fit *width* at *size* (a very long company name)."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _two_lines(text: str, font: str, size: float, width: float) -> list[str]:
    """*text* on one line, or broken over two (the second clipped): Chinese names have no
    spaces, so the break is at the last character that fits."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return [text]
    cut = len(text)
    while cut > 1 and pdfmetrics.stringWidth(text[:cut], font, size) > width:
        cut -= 1
    return [text[:cut], _clip(text[cut:], font, size, width)]


def _draw_label(
    c: Canvas, x: float, y: float, label: Label, lang: str, font: str, error: str
) -> None:
    """One label with its lower-left corner at (x, y)."""
    c.setStrokeGray(0.85)
    c.setLineWidth(0.3)
    c.rect(x, y, LABEL_W, LABEL_H, stroke=1, fill=0)
    _draw_qr(c, x + PAD, y + PAD, QR_SIDE, label.url, error)
    tx = x + PAD + QR_SIDE + 1.5 * mm
    width = x + LABEL_W - PAD - tx
    top = y + LABEL_H - PAD
    c.setFillGray(0.35)
    c.setFont(font, _fit(CAPTION[lang], font, 6.5, width))
    c.drawString(tx, top - 7, CAPTION[lang])
    c.setFillGray(0)
    size = _fit(label.barcode, MONO_FONT, 10, width)
    c.setFont(MONO_FONT, size)
    c.drawString(tx, top - 26, _clip(label.barcode, MONO_FONT, size, width))
    c.setFont(font, 8)
    for i, line in enumerate(_two_lines(label.owner, font, 8, width)):
        c.drawString(tx, top - 42 - 10 * i, line)
    spec = label.spec + (f" · {label.medium}" if label.medium else "")
    c.setFont(font, 9)
    c.drawString(tx, top - 70, _clip(spec, font, 9, width))


def render_sheet(labels: Sequence[Label], lang: str, error: str) -> bytes:
    """The PDF: labels in rows from the top left, :data:`PER_SHEET` a page (blocking: call in
    a thread)."""
    if not labels:
        raise ValueError("no labels")
    font = cjk_font()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle("CylinderWatch QR labels" if lang == "en" else "气瓶二维码标签")
    c.setCreator("CylinderWatch")
    page_w, page_h = A4
    left = (page_w - COLS * LABEL_W) / 2
    bottom = (page_h - ROWS * LABEL_H) / 2
    for i, label in enumerate(labels):
        slot = i % PER_SHEET
        if i and slot == 0:
            c.showPage()
        col, row = slot % COLS, slot // COLS
        x = left + col * LABEL_W
        y = bottom + (ROWS - 1 - row) * LABEL_H
        _draw_label(c, x, y, label, lang, font, error)
    c.showPage()
    c.save()
    return buf.getvalue()
