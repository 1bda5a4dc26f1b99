"""The report's generated text: scorecard table, summary line, per-figure notes, macros.

Everything here renders an :func:`implicit_reg.scorecard.verdict.evaluate` frame (and
the run tables' status counts) as LaTeX, so that no number about results is
typed by hand into ``paper/sections/``:

* :func:`summary_text` -- the count of each verdict (title page and scorecard);
* :func:`scorecard_text` -- Section 4's generated paragraph: the counts, what each
  verdict means and every tolerance exception with its reason;
* :func:`to_latex_table` -- the scorecard as a ``longtable`` (breaks across pages),
  each value's verdict and, for every value that does not simply agree, its evidence;
* :func:`figure_note` -- the paragraph printed beside each figure: the counts of
  its verdicts and every disagreement with its evidence (never dropped for length);
* :func:`numbers_tex` -- the file of macros (``\\ReportPreset``,
  ``\\ReportSummary``, ``\\ScorecardText``, ``\\resultdef{id}{field}{value}``,
  ``\\figurenotedef{figure}{text}``) that ``paper/report.tex`` reads.

All of them read the same verdict column (:mod:`implicit_reg.scorecard.verdict`),
so the title page, Section 4, the notes and the table cannot disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from implicit_reg.core.latex_text import format_number, latex_escape
from implicit_reg.scorecard.published import PAPER_TITLES, PAPERS
from implicit_reg.scorecard.tolerance import Tolerance
from implicit_reg.scorecard.verdict import MISSING, VERDICT_LABELS, VERDICTS

__all__ = [
    "NOTE_MAX_CHARS",
    "figure_note",
    "numbers_tex",
    "plain_length",
    "scorecard_text",
    "short_quantity",
    "summary_text",
    "to_latex_table",
]

PAPER_SCALE = "paper"
# A figure note must fit in six lines of \small text at the report's text width
# (about 105 characters a line); the budget leaves room for line-break slack.
NOTE_MAX_CHARS = 560
SCORECARD_COLUMNS = 9


def plain_length(latex: str) -> int:
    """Rough printed length of a LaTeX snippet (commands, braces and ``$`` dropped)."""
    text = re.sub(r"\\times10\^\{(-?\d+)\}", r"x10^\1", latex)
    text = re.sub(r"\\[A-Za-z]+\*?", "", text)
    return len(re.sub(r"[{}$\\]", "", text))


def _scale_phrase(scale: str) -> str:
    return f"at {latex_escape(scale)} scale"


def verdict_counts(df: pd.DataFrame) -> dict[str, int]:
    """How many values have each verdict (the four classes, then ``missing``)."""
    counts = df["verdict"].value_counts() if len(df) else pd.Series(dtype=int)
    return {v: int(counts.get(v, 0)) for v in (*VERDICTS, MISSING)}


def counts_phrase(df: pd.DataFrame) -> str:
    """``3 agree, 2 within the instance spread, 1 disagrees (explained), 0 disagree (unexplained)``."""
    c = verdict_counts(df)

    def verb(n: int, one: str, many: str) -> str:
        return one if n == 1 else many

    return (f"{c['agrees']} {verb(c['agrees'], 'agrees', 'agree')},"
            f" {c['within_spread']} within the instance spread,"
            f" {c['disagrees_explained']} {verb(c['disagrees_explained'], 'disagrees', 'disagree')} (explained),"
            f" {c['disagrees_unexplained']} {verb(c['disagrees_unexplained'], 'disagrees', 'disagree')}"
            " (unexplained)")


def summary_text(df: pd.DataFrame, scale: str = PAPER_SCALE,
                 omitted_figures: Sequence[str] | Mapping[str, str] = ()) -> str:
    """The scorecard's summary line: the count of each verdict.

    E.g. ``Of 40 published values at test scale: 12 agree, 3 within the instance
    spread, 1 disagrees (explained), 2 disagree (unexplained); 22 not computed.``

    Parameters
    ----------
    df
        An :func:`implicit_reg.scorecard.verdict.evaluate` frame.
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
    missing = verdict_counts(df)[MISSING]
    text = f"Of {n} published value{'s' if n != 1 else ''} {_scale_phrase(scale)}: {counts_phrase(df)}"
    if missing:
        text += (f"; {missing} not computed"
                 + (" (an error at paper scale: every published value has a verdict there)"
                    if scale == PAPER_SCALE else f" {_scale_phrase(scale)}"))
    text += "."
    if scale != PAPER_SCALE:
        text += (f" The {latex_escape(scale)} preset runs reduced sizes, so its values are not expected"
                 " to match the published ones; only a paper-scale build tests the papers.")
    return text + omitted


def scorecard_text(df: pd.DataFrame, scale: str = PAPER_SCALE) -> str:
    """Section 4's generated paragraph: the verdict counts and every tolerance exception with its reason."""
    if len(df) == 0:
        return "No published values are listed."
    out = [f"{summary_text(df, scale)}"]
    exceptions = df.loc[df["exception"].fillna("").astype(str) != ""]
    if exceptions.empty:
        out.append(" Every tolerance is the reading rule's: no entry carries an exception.")
    else:
        n = len(exceptions)
        out.append(f" {n} tolerance{'s' if n != 1 else ''} {'are' if n != 1 else 'is'} set against the"
                   " reading rule, each with its reason:\\begin{itemize}\\setlength{\\itemsep}{0pt}")
        for _, r in exceptions.iterrows():
            out.append(f"\\item \\texttt{{{latex_escape(r['id'])}}} ({_tolerance_latex(r['tolerance'])}):"
                       f" {latex_escape(r['exception'])}")
        out.append("\\end{itemize}")
    return "".join(out)


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


_VERDICT_CELLS = {
    "agrees": "agrees",
    "within_spread": "spread",
    "disagrees_explained": r"\textbf{expl.}",
    "disagrees_unexplained": r"\textbf{unexpl.}",
    MISSING: r"\textit{missing}",
}
_READING_CELLS = {"printed": "printed", "log_axis": "log axis", "linear_axis": "lin.\\ axis", "approx_text": r"$\approx$"}


def _verdict_cell(verdict: str) -> str:
    return _VERDICT_CELLS.get(verdict, latex_escape(verdict))


def _reading_cell(reading: Any) -> str:
    """Short kind of a :meth:`Reading.label` (``printed 210.15``, ``log axis of nb_n2_error``, ...)."""
    text = str(reading)
    for prefix, kind in (("printed", "printed"), ("log axis", "log_axis"), ("linear axis", "linear_axis"),
                         ("'≈'", "approx_text")):
        if text.startswith(prefix):
            return _READING_CELLS[kind]
    return latex_escape(text)


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
    column, to leave the width to the quantity). Columns: quantity, reading
    (printed, log axis, linear axis, ≈), published, reproduced, matched rows,
    tolerance, verdict, number of protocol instances and the published value's
    percentile among them. Below every value that does not simply agree, and every
    value with a tolerance exception, a full-width line gives the evidence.
    Requires ``booktabs`` and ``longtable``.
    """
    if len(df) == 0:
        return "\\emph{No published values are listed.}\n"
    head = ("Quantity & Reading & Published & Ours & $n$ & Tolerance & Verdict & Inst. & Pctl. \\\\\n")
    out = [
        "{\\footnotesize\\setlength{\\tabcolsep}{3pt}\n",
        "\\begin{longtable}{@{}p{0.30\\linewidth} l r r r l l r r@{}}\n",
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
        exception = str(r.get("exception") or "") if not pd.isna(r.get("exception")) else ""
        cells = [
            "\\raggedright " + latex_escape(r["description"]),
            _reading_cell(r.get("reading", "")),
            format_number(r["published"]),
            format_number(r["reproduced"]),
            str(int(r["n_rows"])),
            _tolerance_latex(r["tolerance"]) + ("$^{*}$" if exception else ""),
            _verdict_cell(r["verdict"]),
            _instances_cell(r.get("instances", 0)),
            _percentile_cell(r.get("published_percentile", math.nan)),
        ]
        out.append(" & ".join(cells) + " \\\\\n")
        if r["verdict"] != "agrees" or exception:
            evidence = str(r.get("evidence") or "")
            if r["verdict"] == MISSING and str(r.get("note") or ""):
                evidence = str(r["note"])
            evidence = latex_escape(evidence)
            if exception:
                evidence += f"; $^{{*}}$tolerance exception: {latex_escape(exception)}"
            out.append(f"\\multicolumn{{{SCORECARD_COLUMNS}}}{{@{{\\hspace{{1em}}}}p{{0.95\\linewidth}}@{{}}}}"
                       f"{{\\scriptsize\\raggedright {evidence}}} \\\\[1pt]\n")
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


def _variant_percentiles(text: str) -> list[tuple[str, float, int]]:
    """``[(variant, percentile, K), ...]`` from a ``percentile_by_variant`` cell."""
    return [(name, float(pct), int(k)) for name, pct, k in
            re.findall(r"([A-Za-z0-9_]+): ([\d.]+) \((\d+)\)", str(text or ""))]


def _pct(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _disagreement_reason(row: Mapping[str, Any]) -> str:
    """Why a value disagrees, in a few words, from its spread columns (the full evidence is in Section 4)."""
    found = _variant_percentiles(row.get("percentile_by_variant", ""))
    if not found:
        return "no instance spread was run"
    parts = ", ".join(f"{latex_escape(name.replace('_', ' '))} {_pct(pct)}" for name, pct, _ in found)
    k = found[0][2]
    if row["verdict"] == "disagrees_explained":
        m = re.search(r"variant (\S+) reproduces it", str(row.get("evidence", "")))
        name = m.group(1) if m else "a variant"
        return f"explained by the variant {latex_escape(name.replace('_', ' '))}; percentiles of {k} instances: {parts}"
    return f"percentiles of {k} instances: {parts}"


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
        Values within the spread or in agreement are added, at most ``max_items``, while
        the paragraph's printed length stays at most ``max_chars``. Disagreements are
        never dropped: every one is listed, whatever the length.
    extra
        A generated sentence the note always keeps (e.g. what runs stopped at their
        step cap had reached, :func:`implicit_reg.arora2019.dynamics.cap_sentence`).

    Returns
    -------
    str
        LaTeX text: the count of each verdict, every disagreement with its reason, some
        of the other comparisons, and what was not computed.
    """
    lead = f"\\textbf{{Paper vs.\\ ours}} (\\emph{{{latex_escape(scale)}}} preset): "
    tail_extra = " " + extra if extra else ""
    if rows.empty:
        runs = ""
        if run_counts:
            # Every status is named: a figure's table also holds convex solves ("optimal")
            # and ground truths ("exact"), and a failure must not hide in a remainder.
            total = sum(run_counts.values())
            by_status = sorted(run_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            runs = (f" {total} results by status: "
                    + ", ".join(f"{int(n)} {latex_escape(str(s))}" for s, n in by_status) + ".")
        return lead + "the papers quote no number for this figure." + runs + tail_extra
    n = len(rows)
    head = f"of {n} published value{'s' if n != 1 else ''} {_scale_phrase(scale)}, {counts_phrase(rows)}."
    missing = int((rows["verdict"] == MISSING).sum())
    tail = f" {missing} not computed {_scale_phrase(scale)}." if missing else ""
    disagree = rows.loc[rows["verdict"].isin(["disagrees_unexplained", "disagrees_explained"])]
    must = [f"{_comparison(r)} ({_ratio_phrase(r['published'], r['reproduced'])}; {_disagreement_reason(r)})."
            for _, r in disagree.sort_values("verdict", ascending=False).iterrows()]
    if must:
        must[0] = "Disagreements: " + must[0]
    spread = rows.loc[rows["verdict"] == "within_spread"]
    agree = rows.loc[rows["verdict"] == "agrees"]
    optional = [f"{_comparison(r)} (within the spread: percentile {_pct(float(r['published_percentile']))}"
                f" of {int(r['instances'])} instances)." for _, r in spread.iterrows()]
    optional += [f"{_comparison(r)} (agrees)." for _, r in agree.iterrows()]
    chosen: list[str] = []
    for item in optional[:max_items]:
        text = lead + head + "".join(" " + x for x in must + chosen + [item]) + tail + tail_extra
        if plain_length(text) > max_chars:
            break
        chosen.append(item)
    return lead + head + "".join(" " + x for x in must + chosen) + tail + tail_extra


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

    Defines ``\\ReportPreset``, ``\\ReportSummary`` (the count of each verdict),
    ``\\ScorecardText`` (Section 4's paragraph: :func:`scorecard_text`), for every published entry
    ``\\resultdef{<id>}{published|reproduced|verdict|percentile}{...}`` and for
    every figure ``\\figurenotedef{<figure>}{<paragraph>}``; ``report.tex``
    provides ``\\result{id}{field}`` and ``\\figurenote{figure}`` to read them.
    ``extra_notes`` adds a generated sentence to a figure's note (figure -> text);
    ``omitted_figures`` are named in the summary (see :func:`summary_text`).
    """
    run_counts = run_counts or {}
    extra_notes = extra_notes or {}
    out = ["% generated by workflow/scripts/report_fragments.py -- do not edit\n",
           f"\\renewcommand{{\\ReportPreset}}{{{latex_escape(scale)}}}\n",
           f"\\renewcommand{{\\ReportSummary}}{{{summary_text(df, scale, omitted_figures)}}}\n",
           f"\\renewcommand{{\\ScorecardText}}{{{scorecard_text(df, scale)}}}\n"]
    for _, r in df.iterrows():
        out.append(_def("resultdef", r["id"], "published", format_number(r["published"])))
        out.append(_def("resultdef", r["id"], "reproduced", format_number(r["reproduced"])))
        out.append(_def("resultdef", r["id"], "verdict", latex_escape(VERDICT_LABELS.get(r["verdict"], r["verdict"]))))
        out.append(_def("resultdef", r["id"], "percentile", _percentile_cell(r.get("published_percentile"))))
    for fig in figures:
        rows = df.loc[df["figure"] == fig]
        out.append(_def("figurenotedef", fig, None,
                        figure_note(rows, scale, run_counts.get(fig), extra=extra_notes.get(fig, ""))))
    return "".join(out)
