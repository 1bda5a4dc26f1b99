"""Layout checks of the built report: how full each page is, and which pages are mostly blank.

A page is rendered in grey levels (``pdftoppm``); its rows with ink are
merged into blocks across gaps shorter than a line break, and the page's *fill*
is the blocks' total height over the height of the text area. A page of
running text or a well-filled float page has a fill near one; a page with a
single line, or a half page left blank before a table, is low. Section starts
are read from the table of contents (``pdftotext``), so that the last page of
a section, which may end anywhere, is not reported.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ink_fill", "page_fills", "page_texts", "section_start_pages", "sparse_pages"]

# A4 with the report's 2.4 cm margins: the text area, as fractions of the page height.
TEXT_TOP, TEXT_BOTTOM = 2.4 / 29.7, 1 - 2.4 / 29.7
INK_LEVEL = 200  # grey level below which a pixel counts as ink (0 black, 255 white)
MERGE_GAP = 0.03  # gaps below this fraction of the page height join two blocks (line and paragraph skips)


def ink_fill(grey: np.ndarray, top: float = TEXT_TOP, bottom: float = TEXT_BOTTOM, gap: float = MERGE_GAP) -> float:
    """Fraction of the text area's height covered by blocks of ink.

    Parameters
    ----------
    grey
        One page as a 2-d array of grey levels (0-255).
    top, bottom
        The text area, as fractions of the page height (the footer with the
        page number lies below it).
    gap
        Ink rows closer than this fraction of the page height are one block.
    """
    h = grey.shape[0]
    lo, hi = int(round(top * h)), int(round(bottom * h))
    rows = np.flatnonzero((grey[lo:hi] < INK_LEVEL).any(axis=1))
    if rows.size == 0:
        return 0.0
    max_gap = max(int(round(gap * h)), 1)
    covered, start = 0, rows[0]
    for prev, cur in zip(rows[:-1], rows[1:]):
        if cur - prev > max_gap:
            covered += prev - start + 1
            start = cur
    covered += rows[-1] - start + 1
    return covered / max(hi - lo, 1)


def page_fills(pdf: str | Path, dpi: int = 30) -> list[float]:
    """:func:`ink_fill` of every page of ``pdf`` (rendered with ``pdftoppm -gray``)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), str(pdf), f"{tmp}/p"], check=True,
                       capture_output=True)
        pages = sorted(Path(tmp).glob("p-*.pgm"), key=lambda p: int(p.stem.split("-")[-1]))
        return [ink_fill(np.asarray(Image.open(p).convert("L"))) for p in pages]


def page_texts(pdf: str | Path) -> list[str]:
    """Text of every page (``pdftotext -layout``; pages are split at form feeds)."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                         text=True).stdout
    pages = out.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


_TOC_LINE = re.compile(r"^\s*(\d+)\s+\S.*?[\s.]+(\d+)\s*$")


def section_start_pages(texts: Sequence[str]) -> set[int]:
    """Printed page numbers where a numbered section starts, read from the table of contents.

    The contents page is the first page containing the word ``Contents``;
    its lines ``<n> <title> .... <page>`` give the pages (subsections, with a
    dotted number, are not section starts).
    """
    toc = next((t for t in texts if re.search(r"^\s*Contents\s*$", t, flags=re.M)), "")
    entries: list[str] = []
    for line in toc.splitlines():
        if re.match(r"^\s*\d+\s", line):
            entries.append(line)
        elif entries and line.strip() and not line.strip().isdigit():
            entries[-1] += " " + line.strip()  # a long title wraps onto the next line
    return {int(m.group(2)) for entry in entries if (m := _TOC_LINE.match(entry))}


def _printed_number(text: str) -> int | None:
    """The page number printed at the bottom of a page (the last line that is a bare integer)."""
    for line in reversed(text.strip().splitlines()):
        if line.strip().isdigit():
            return int(line.strip())
        if line.strip():
            return None
    return None


def sparse_pages(pdf: str | Path, min_fill: float = 0.5, dpi: int = 30) -> list[tuple[int, float]]:
    """Pages (1-based index in the file, fill) that are mostly blank without ending a section.

    A page below ``min_fill`` is allowed when it is the title page, the last
    page, or the page before a section start (the last page of a section).
    """
    fills = page_fills(pdf, dpi=dpi)
    texts = page_texts(pdf)
    starts = section_start_pages(texts)
    numbers = [_printed_number(t) for t in texts]
    bad = []
    for i, fill in enumerate(fills):
        if fill >= min_fill or i == 0 or i == len(fills) - 1:
            continue
        following = numbers[i + 1] if i + 1 < len(numbers) else None
        if following is not None and following in starts:
            continue
        bad.append((i + 1, round(fill, 3)))
    return bad
