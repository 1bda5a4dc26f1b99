"""The report's generated text: scorecard table, summary line, per-figure notes, macros.

Everything here renders an :func:`implicit_reg.published.evaluate` frame (and
the run tables' status counts) as LaTeX, so that no number about results is
typed by hand into ``paper/sections/``:

* :func:`summary_text` -- "N of M published values within tolerance at <preset> scale";
* :func:`to_latex_table` -- the scorecard as a ``longtable`` (breaks across pages);
* :func:`figure_note` -- the short paragraph printed beside each figure: the
  paper's key numbers next to ours and, where they differ, the reason, derived
  from the numbers and the ``instance_dependent`` field of the published entry;
* :func:`numbers_tex` -- the file of macros (``\\ReportPreset``,
  ``\\ReportSummary``, ``\\resultdef{id}{field}{value}``,
  ``\\figurenotedef{figure}{text}``) that ``paper/report.tex`` reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from implicit_reg.core.latex_text import format_number, latex_escape
from implicit_reg.published import PAPER_TITLES, PAPERS, Tolerance

__all__ = [
    "NOTE_MAX_CHARS",
    "figure_note",
    "numbers_tex",
    "plain_length",
    "short_quantity",
    "summary_text",
    "to_latex_table",
]

PAPER_SCALE = "paper"
# A figure note must fit in six lines of \small text at the report's text width
# (about 105 characters a line); the budget leaves room for line-break slack.
NOTE_MAX_CHARS = 560
SCORECARD_COLUMNS = 10


def plain_length(latex: str) -> int:
    """Rough printed length of a LaTeX snippet (commands, braces and ``$`` dropped)."""
    text = re.sub(r"\\times10\^\{(-?\d+)\}", r"x10^\1", latex)
    text = re.sub(r"\\[A-Za-z]+\*?", "", text)
    return len(re.sub(r"[{}$\\]", "", text))


def _scale_phrase(scale: str) -> str:
    return f"at {latex_escape(scale)} scale"


def summary_text(df: pd.DataFrame, scale: str = PAPER_SCALE,
                 omitted_figures: Sequence[str] | Mapping[str, str] = ()) -> str:
    """The scorecard's summary line, e.g. ``12 of 40 published values within tolerance at test scale``.

    Parameters
    ----------
    df
        An :func:`implicit_reg.published.evaluate` frame.
    scale
        The preset that produced the values; when it is not ``paper`` the line
        says that the sizes are not the paper's.
    omitted_figures
        Figures of the preset that this build leaves out: named, so that a report of a
        subset does not read as the whole reproduction. A mapping gives each figure's
        reason (grouped in the sentence); a plain sequence has none.
    """
    n = len(df)
    omitted = ""
    if omitted_figures:
        reasons = omitted_figures if isinstance(omitted_figures, Mapping) else dict.fromkeys(omitted_figures, "")
        groups: dict[str, list[str]] = {}
        for figure, reason in reasons.items():
            groups.setdefault(reason, []).append(latex_escape(figure))
        names = "; ".join(", ".join(figs) + (f" ({latex_escape(reason)})" if reason else "")
                          for reason, figs in groups.items())
        omitted = (f" This build leaves out {len(reasons)} figure{'s' if len(reasons) != 1 else ''}"
                   f" of the preset: {names}.")
    if n == 0:
        return "No published values are listed." + omitted
    passed = int((df["status"] == "pass").sum())
    failed = int((df["status"] == "fail").sum())
    missing = int((df["status"] == "missing").sum())
    text = f"{passed} of {n} published value{'s' if n != 1 else ''} within tolerance {_scale_phrase(scale)}"
    extra = []
    if failed:
        extra.append(f"{failed} outside")
    if missing:
        extra.append(f"{missing} not computed {_scale_phrase(scale)}")
    if extra:
        text += " (" + ", ".join(extra) + ")"
    text += "."
    if scale != PAPER_SCALE:
        text += (f" The {latex_escape(scale)} preset runs reduced sizes, so its values are not expected"
                 " to match the published ones; only a paper-scale build tests the papers.")
    return text + omitted


def _tolerance_latex(text: Any) -> str:
    """LaTeX for a :meth:`Tolerance.text` string (falls back to escaped text)."""
    m = re.fullmatch(r"(factor|abs|rel) (\S+?)(%?)", str(text))
    try:
        if m:
            kind, val = m.group(1), float(m.group(2))
            return Tolerance(kind, val / 100 if kind == "rel" else val).latex()
        m = re.fullmatch(r"range \[(\S+), (\S+)\]", str(text))
        if m:
            return Tolerance("range", (float(m.group(1)), float(m.group(2)))).latex()
    except ValueError:
        pass
    return latex_escape(text)


def _match_cell(status: str) -> str:
    return {"pass": "yes", "fail": r"\textbf{no}", "missing": r"\textit{missing}"}.get(status, latex_escape(status))


def _percentile_cell(value: Any) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.0f}"


def _instances_cell(value: Any) -> str:
    return str(int(value)) if value and not pd.isna(value) else "--"


def _ordered(df: pd.DataFrame) -> list[int]:
    order = {p: i for i, p in enumerate(PAPERS)}
    return sorted(range(len(df)), key=lambda i: (order.get(df["paper"].iloc[i], len(order)), i))


def to_latex_table(df: pd.DataFrame) -> str:
    """Render an evaluation frame as one ``longtable`` that breaks across pages.

    Rows are grouped by paper and figure (group rows instead of a figure
    column, to leave the width to the quantity). Columns: quantity, source,
    published, reproduced, matched rows, tolerance, match, scale (the preset),
    number of instances and the published value's percentile among them.
    Requires ``booktabs`` and ``longtable``.
    """
    if len(df) == 0:
        return "\\emph{No published values are listed.}\n"
    head = ("Quantity & Src & Published & Ours & $n$ & Tolerance & Match & Scale & Inst. & Pctl. \\\\\n")
    out = [
        "{\\footnotesize\\setlength{\\tabcolsep}{3pt}\n",
        "\\begin{longtable}{@{}p{0.28\\linewidth} l r r r l l l r r@{}}\n",
        "\\toprule\n", head, "\\midrule\n\\endfirsthead\n",
        "\\toprule\n", head, "\\midrule\n\\endhead\n",
        f"\\midrule\n\\multicolumn{{{SCORECARD_COLUMNS}}}{{r}}{{\\emph{{continued on the next page}}}} \\\\\n\\endfoot\n",
        "\\bottomrule\n\\endlastfoot\n",
    ]
    paper, figure = None, None
    for i in _ordered(df):
        r = df.iloc[i]
        if r["paper"] != paper:
            paper, figure = r["paper"], None
            title = PAPER_TITLES.get(paper, latex_escape(paper))
            out.append(f"\\multicolumn{{{SCORECARD_COLUMNS}}}{{@{{}}l}}{{\\bfseries {title}}} \\\\\n")
        if r["figure"] != figure:
            figure = r["figure"]
            out.append(f"\\multicolumn{{{SCORECARD_COLUMNS}}}{{@{{}}l}}{{\\texttt{{{latex_escape(figure)}}}}} \\\\\n")
        cells = [
            "\\raggedright " + latex_escape(r["description"]),
            latex_escape(r["source"]),
            format_number(r["published"]),
            format_number(r["reproduced"]),
            str(int(r["n_rows"])),
            _tolerance_latex(r["tolerance"]),
            _match_cell(r["status"]),
            latex_escape(r.get("scale", "")),
            _instances_cell(r.get("instances", 0)),
            _percentile_cell(r.get("published_percentile", math.nan)),
        ]
        out.append(" & ".join(cells) + " \\\\\n")
    out.append("\\end{longtable}}\n")
    return "".join(out)


def short_quantity(description: str) -> str:
    """The part of a description that names the quantity (before ``;``, without a trailing remark)."""
    text = description.split(";")[0].strip()
    if text.count("(") > text.count(")"):  # the ';' was inside a parenthesis: drop its opening part
        text = text[: text.rindex("(")].strip()
    return re.sub(r"\s*\([^()]*\)\s*$", "", text).strip() or text


def _factor_text(factor: float) -> str:
    """``1.8``, ``72``, ``160``: two significant digits, never in exponent notation."""
    return f"{factor:.2g}" if factor < 100 else f"{factor:.0f}"


def _ratio_phrase(published: float, reproduced: float) -> str:
    if published > 0 and reproduced > 0:
        ratio = reproduced / published
        factor, word = (ratio, "higher") if ratio >= 1 else (1 / ratio, "lower")
        return f"ours {_factor_text(factor)}$\\times$ {word}"
    return "ours differs"


def _sampling_phrase(by_sampling: str) -> str:
    """Which sampling protocol the published value fits best, from ``name: pct (K); ...``."""
    found = re.findall(r"([A-Za-z_]+): (\d+) \((\d+)\)", by_sampling or "")
    if len(found) < 2:
        return ""
    parts = ", ".join(f"{latex_escape(name.replace('_', ' '))} {pct}" for name, pct, _ in found)
    best = min(found, key=lambda t: abs(int(t[1]) - 50))[0]
    return f" (percentiles by sampling: {parts}; it fits {latex_escape(best.replace('_', ' '))} best)"


def _reason(row: Mapping[str, Any], scale: str) -> str:
    """Why a value is outside its tolerance, from the numbers and the entry's fields."""
    if scale != PAPER_SCALE:
        return f"expected {_scale_phrase(scale)}, whose sizes are not the paper's"
    k = int(row.get("instances") or 0)
    pct = row.get("published_percentile", math.nan)
    if k and not pd.isna(pct):
        inside = 0 < float(pct) < 100
        verdict = ("inside their spread: another instance, not a disagreement" if inside
                   else "outside all of them: a disagreement")
        return (f"the published value lies at percentile {float(pct):.0f} of our {k} instances, {verdict}"
                + _sampling_phrase(str(row.get("percentile_by_sampling") or "")))
    if row.get("instance_dependent"):
        reason = "the value depends on the random instance, which the authors did not publish"
        if re.search(r"error|mse", str(row.get("metric", ""))):  # only an error says how hard an instance is
            reason += f": our instance is {'easier' if row['reproduced'] < row['published'] else 'harder'}"
        return reason
    return "not explained by the random instance"


def _comparison(row: Mapping[str, Any]) -> str:
    return (f"{latex_escape(short_quantity(str(row['description'])))}: paper {format_number(row['published'])},"
            f" ours {format_number(row['reproduced'])}")


def figure_note(
    rows: pd.DataFrame,
    scale: str,
    run_counts: Mapping[str, int] | None = None,
    max_items: int = 3,
    max_chars: int = NOTE_MAX_CHARS,
    extra: str = "",
) -> str:
    """The generated paragraph printed beside one figure.

    Parameters
    ----------
    rows
        The evaluation rows of this figure's published entries (may be empty).
    scale
        The preset that built the results.
    run_counts
        Status counts of the figure's runs table (e.g. ``{"converged": 10}``),
        each status named when the paper quotes no number for the figure.
    max_items, max_chars
        At most ``max_items`` comparisons, and items are dropped until the
        paragraph's printed length is at most ``max_chars``.
    extra
        A generated sentence the note always keeps (e.g. what runs stopped at their
        step cap had reached, :func:`implicit_reg.arora2019.dynamics.cap_sentence`).

    Returns
    -------
    str
        LaTeX text: the count within tolerance, the key comparisons (values
        outside first, each with its reason), and what was not computed.
    """
    lead = f"\\textbf{{Paper vs.\\ ours}} (\\emph{{{latex_escape(scale)}}} preset): "
    if rows.empty:
        runs = ""
        if run_counts:
            # Every status is named: a figure's table also holds convex solves ("optimal")
            # and ground truths ("exact"), and a failure must not hide in a remainder.
            total = sum(run_counts.values())
            by_status = sorted(run_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            runs = (f" {total} results by status: "
                    + ", ".join(f"{int(n)} {latex_escape(str(s))}" for s, n in by_status) + ".")
        return lead + "the papers quote no number for this figure." + runs + (" " + extra if extra else "")
    computed = rows.loc[rows["status"] != "missing"]
    head = (f"{int((rows['status'] == 'pass').sum())} of {len(rows)} published values within tolerance"
            f" {_scale_phrase(scale)}.")
    missing = len(rows) - len(computed)
    tail = f" {missing} not computed {_scale_phrase(scale)}." if missing else ""
    fails = computed.loc[computed["status"] == "fail"]
    passes = computed.loc[computed["status"] == "pass"]
    items = [
        f"{_comparison(r)} ({_ratio_phrase(r['published'], r['reproduced'])}: {_reason(r, scale)})."
        for _, r in fails.iterrows()
    ] + [f"{_comparison(r)}." for _, r in passes.iterrows()]
    items = items[:max_items]
    while True:
        text = lead + head + "".join(" " + s for s in items) + tail + (" " + extra if extra else "")
        if plain_length(text) <= max_chars or not items:
            return text
        items.pop()


def _def(kind: str, key: str, field: str | None, value: str) -> str:
    if field is None:
        return f"\\{kind}{{{key}}}{{{value}}}\n"
    return f"\\{kind}{{{key}}}{{{field}}}{{{value}}}\n"


def numbers_tex(
    df: pd.DataFrame,
    scale: str,
    figures: Sequence[str],
    run_counts: Mapping[str, Mapping[str, int]] | None = None,
    extra_notes: Mapping[str, str] | None = None,
    omitted_figures: Sequence[str] | Mapping[str, str] = (),
) -> str:
    """The generated macro file ``paper/generated/numbers.tex``.

    Defines ``\\ReportPreset``, ``\\ReportSummary``, for every published entry
    ``\\resultdef{<id>}{published|reproduced|status|percentile}{...}`` and for
    every figure ``\\figurenotedef{<figure>}{<paragraph>}``; ``report.tex``
    provides ``\\result{id}{field}`` and ``\\figurenote{figure}`` to read them.
    ``extra_notes`` adds a generated sentence to a figure's note (figure -> text);
    ``omitted_figures`` are named in the summary (see :func:`summary_text`).
    """
    run_counts = run_counts or {}
    extra_notes = extra_notes or {}
    out = ["% generated by workflow/scripts/report_fragments.py -- do not edit\n",
           f"\\renewcommand{{\\ReportPreset}}{{{latex_escape(scale)}}}\n",
           f"\\renewcommand{{\\ReportSummary}}{{{summary_text(df, scale, omitted_figures)}}}\n"]
    for _, r in df.iterrows():
        out.append(_def("resultdef", r["id"], "published", format_number(r["published"])))
        out.append(_def("resultdef", r["id"], "reproduced", format_number(r["reproduced"])))
        out.append(_def("resultdef", r["id"], "status", latex_escape(r["status"])))
        out.append(_def("resultdef", r["id"], "percentile", _percentile_cell(r.get("published_percentile"))))
    for fig in figures:
        rows = df.loc[df["figure"] == fig]
        out.append(_def("figurenotedef", fig, None,
                        figure_note(rows, scale, run_counts.get(fig), extra=extra_notes.get(fig, ""))))
    return "".join(out)
