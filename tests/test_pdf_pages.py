"""Tests for implicit_reg.report.pdf_pages (page fill and mostly-blank pages) and of the built report."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from implicit_reg.report.pdf_pages import (  # noqa: E402
    ink_fill,
    page_fills,
    page_texts,
    section_start_pages,
    sparse_pages,
)

REPO = Path(__file__).resolve().parents[1]
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="poppler-utils not installed")


def test_ink_fill_blocks() -> None:
    page = np.full((1000, 700), 255, dtype=np.uint8)
    assert ink_fill(page) == 0.0
    # text lines 10 px apart merge into one block; the margins are ignored
    for y in range(100, 500, 10):
        page[y, 100:600] = 0
    page[980, 300:400] = 0  # page number in the footer
    text_area = 1000 * (1 - 2 * 2.4 / 29.7)
    assert ink_fill(page) == pytest.approx(391 / text_area, rel=0.01)
    page[850, 100:600] = 0  # a lone line far below: its own one-row block
    assert ink_fill(page) == pytest.approx(392 / text_area, rel=0.01)


def _page(pdf: PdfPages, lines: list[str], number: int | None) -> None:
    fig = Figure(figsize=(8.27, 11.69))
    for k, line in enumerate(lines):
        fig.text(0.1, 0.9 - 0.021 * k, line, fontsize=11, va="top")
    if number is not None:
        fig.text(0.5, 0.04, str(number), ha="center")
    pdf.savefig(fig)


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    """Title, contents, a full page, a near-empty page, a section end, a section start, the last page."""
    full = [f"running text line {k} of a page that is full of words" for k in range(38)]
    path = tmp_path / "sample.pdf"
    with PdfPages(path) as pdf:
        _page(pdf, ["A report"], None)
        _page(pdf, ["Contents", "1   Introduction . . . . . . . . 3", "2   Results . . . . . . . . 6",
                    "2.1   Detail . . . . . . . . 6"], None)
        _page(pdf, ["1   Introduction", *full], 3)
        _page(pdf, ["one stray line"], 4)          # mostly blank inside section 1
        _page(pdf, full[:5], 5)                    # last page of section 1: allowed
        _page(pdf, ["2   Results", *full], 6)
        _page(pdf, ["the end"], 7)                 # the last page: allowed
    return path


@needs_poppler
def test_sparse_pages_on_a_synthetic_pdf(sample_pdf: Path) -> None:
    fills = page_fills(sample_pdf)
    assert len(fills) == 7 and fills[2] > 0.7 and fills[3] < 0.05
    texts = page_texts(sample_pdf)
    assert len(texts) == 7 and "stray" in texts[3]
    assert section_start_pages(texts) == {3, 6}
    assert [p for p, _ in sparse_pages(sample_pdf)] == [4]


@needs_poppler
@pytest.mark.parametrize("relative", ["paper/build/report.pdf", "archive/paper/report.pdf"])
def test_report_has_no_mostly_blank_pages(relative: str) -> None:
    """Only a section's last page may be mostly blank: in the PDF built by the pipeline (any
    preset), and in the committed paper-scale PDF (archive/paper), which CI does not rebuild
    (with all 15 figures in, three large floats once took a page each, one of them 46 % filled).
    """
    pdf = REPO / relative
    if not pdf.exists():
        pytest.skip(f"{relative} not built (run snakemake first)")
    assert sparse_pages(pdf) == []
