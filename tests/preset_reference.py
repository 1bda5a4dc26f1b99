"""The test preset's figure tables, figures and scorecard, fingerprinted: what the redesign must keep.

The package redesign (one package per paper) moved code and renamed columns; it must
change no number. ``tests/data/test_preset_reference.json`` fingerprints the test preset
as built by the code before the redesign (commit ``9feea1e``): every figure table
``results/<figure>/*.parquet``, every figure's PNG pixels and the scorecard's results
per published value (values added to config/published.yaml later are not compared).
:func:`compare` checks a fresh run against it, after applying :data:`COLUMN_RENAMES`
to the reference.

On the CPU that recorded it, the comparison is exact (content hashes; wall-clock
columns aside); a figure that gained published values (drawn as markers) since the
reference is compared by its tables only. On another CPU, BLAS kernels may round differently, so floats are
compared by column sums and extremes to ``rtol`` and the pixels are not compared.

Record (only when a change is meant to alter the reference, with the reason in the
commit)::

    python tests/preset_reference.py --record <repo copy that ran the test preset>

or re-record only the figures a (versioned) numerics change meant to move, keeping the
rest of the reference as it was recorded::

    python tests/preset_reference.py --update <repo copy> <figure> [<figure> ...]

Updates so far: ``arora2019_fig5`` and ``arora2019_na2`` at min_nuclear_norm_sensing
version 1 (the sensing solve's slack form, which moves the solutions SCS stops at by
solver-tolerance amounts).

Another CPU can get an exact reference of its own, recorded from a run whose comparison
with the first reference (on that other CPU: floats to ``rtol``) finds nothing but the
counts that float rounding decides (:data:`ROUNDING_COUNTS`)::

    python tests/preset_reference.py --record-cpu <repo copy that ran the test preset>

It is written to ``tests/data/test_preset_reference.<cpu digest>.json`` and used, exactly,
on that CPU from then on. Figures whose drawing changed by design since a reference are
compared by their tables only (:data:`RESTYLED`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).resolve().parent / "data" / "test_preset_reference.json"

#: (table path regex, old column, new column): the redesign's column renames, applied
#: to the reference before comparing.
COLUMN_RENAMES: list[tuple[str, str, str]] = [
    # Razin & Cohen: one name per quantity across both papers' tables (issue 13)
    (r"results/razin2020_", "final_loss", "final_train_loss"),
    (r"results/razin2020_", "loss_at_cut", "train_loss_at_cut"),
    (r"results/razin2020_[^/]+/(trajectories|markers)", "loss", "train_loss"),
    (r"results/razin2020_", "target_rank", "rank"),
    # the 2x2 runs' "init X" is the std of the product's entries, not Arora et al.'s init_scale
    (r"results/razin2020_", "init_scale", "init_product_std"),
]

#: Columns that measure time, not numbers: never compared.
VOLATILE = re.compile(r"wall|seconds")

#: Integer columns that float rounding decides: on another CPU a run may cross its loss
#: threshold (or SCS its residual test) a few iterations earlier or later. They are
#: compared exactly on the CPU of a reference and not at all on another one.
ROUNDING_COUNTS = frozenset({"iterations", "solver_iterations", "iteration"})
#: How close floats of a run on another CPU must be to the first reference for that run to
#: become the other CPU's own reference: a sensing run that stops a few iterations
#: earlier on another CPU ends 1e-3 off in its nuclear norm (measured: Intel Xeon vs AMD EPYC).
RECORD_CPU_RTOL = 1e-2

#: Figures whose drawing changed by design after the reference was recorded on the
#: first CPU (their tables still compare): figure -> why.
RESTYLED = {
    name: "runs stopped at the iteration cap are drawn as hollow squares (issue 27 item 4)"
    for name in ("arora2019_fig1", "arora2019_fig2", "arora2019_fig4", "arora2019_fig5", "arora2019_n1",
                 "arora2019_n2", "arora2019_na1", "arora2019_na2", "razin2020_fig1")
}


def cpu_reference_path(cpu: str) -> Path:
    """Where the exact reference of another CPU lives (by a digest of its identity)."""
    return REFERENCE.with_name(f"{REFERENCE.stem}.{hashlib.sha256(cpu.encode()).hexdigest()[:12]}.json")


def reference_for(cpu: str) -> tuple[dict[str, Any], bool]:
    """The reference to compare a run on ``cpu`` with, and whether it was recorded on that CPU."""
    first = json.loads(REFERENCE.read_text())
    if first["cpu"] == cpu:
        return first, True
    own = cpu_reference_path(cpu)
    if own.is_file():
        return json.loads(own.read_text()), True
    return first, False


def cpu_identity() -> str:
    """Model name and instruction-set flags of this CPU (what decides BLAS rounding)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    digest = hashlib.sha256((flags.group(1) if flags else "").encode()).hexdigest()[:12]
    return f"{model.group(1) if model else platform.processor()} flags:{digest}"


def _column_digest(values: pd.Series) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(values.reset_index(drop=True), index=False).values
                          .tobytes()).hexdigest()[:16]


def table_fingerprint(df: pd.DataFrame) -> dict[str, Any]:
    """Columns, dtypes, row count, per-column content hash and float summaries of a table."""
    columns = [c for c in df.columns if not VOLATILE.search(c)]
    out: dict[str, Any] = {"rows": len(df), "order": columns, "columns": {}}
    for col in columns:
        s = df[col]
        entry: dict[str, Any] = {"dtype": str(s.dtype), "sha": _column_digest(s)}
        if pd.api.types.is_float_dtype(s):
            finite = s[np.isfinite(s)]
            entry["summary"] = [float(finite.sum()), float(finite.min()) if len(finite) else 0.0,
                                float(finite.max()) if len(finite) else 0.0, int(s.isna().sum())]
        out["columns"][col] = entry
    return out


def png_digest(path: Path) -> str:
    """Hash of a PNG's decoded pixels (not its bytes, which carry metadata)."""
    import matplotlib.image as mpimg

    pixels = np.ascontiguousarray(mpimg.imread(path))
    return hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()[:16]


def fingerprint(work: Path) -> dict[str, Any]:
    """The fingerprint of a repository copy that ran the test preset."""
    tables = {}
    for path in sorted((work / "results").glob("*/*.parquet")):
        rel = str(path.relative_to(work))
        if re.match(r"results/(arora2019|razin2020)_\w+/", rel):
            tables[rel] = table_fingerprint(pd.read_parquet(path))
    scorecard = work / "paper" / "generated" / "published_vs_reproduced.csv"
    card = pd.read_csv(scorecard) if scorecard.exists() else pd.DataFrame(columns=["id", "figure"])
    figures = {str(p.relative_to(work)): png_digest(p) for p in sorted((work / "figures").glob("*.png"))}
    return {"cpu": cpu_identity(), "tables": tables, "figures": figures, "scorecard": scorecard_rows(card),
            "scorecard_figures": {str(i): str(f) for i, f in zip(card["id"], card["figure"])}}


#: The scorecard's result columns: what the pipeline computed for a published value.
SCORECARD_RESULTS = ("published", "reproduced", "n_rows", "within", "status", "instances", "published_percentile")
#: Judgments, not computed numbers: they follow the tolerance rule (issue 25 replaced the
#: hand-set tolerances and pass/fail by the reading rule and four verdicts), so they are not compared.
SCORECARD_JUDGMENTS = ("within", "status")


def scorecard_rows(df: pd.DataFrame) -> dict[str, list]:
    """The scorecard's results by published id (published values added later are new ids)."""
    return {str(r["id"]): [None if c not in df.columns or pd.isna(r[c])
                           else (float(r[c]) if isinstance(r[c], (int, float)) else str(r[c]))
                           for c in SCORECARD_RESULTS] for _, r in df.iterrows()}


def renamed(reference: dict[str, Any]) -> dict[str, Any]:
    """The reference with :data:`COLUMN_RENAMES` applied to its tables."""
    tables = {}
    for path, table in reference["tables"].items():
        columns, order = dict(table["columns"]), list(table["order"])
        for pattern, old, new in COLUMN_RENAMES:
            if re.search(pattern, path) and old in columns:
                columns = {(new if c == old else c): v for c, v in columns.items()}
                order = [new if c == old else c for c in order]
        tables[path] = {**table, "columns": columns, "order": order}
    return {**reference, "tables": tables}


def compare(work: Path, rtol: float = 1e-3, reference: dict[str, Any] | None = None) -> list[str]:
    """Differences between a test-preset run in ``work`` and the reference (empty: none).

    The reference is the one recorded on this CPU if there is one (compared exactly),
    else the first one (floats to ``rtol``, :data:`ROUNDING_COUNTS` not compared).
    """
    current = fingerprint(work)
    if reference is None:
        reference, _ = reference_for(current["cpu"])
    reference = renamed(reference)
    exact = reference["cpu"] == current["cpu"]
    first_cpu = json.loads(REFERENCE.read_text())["cpu"]
    problems = []
    if set(reference["tables"]) != set(current["tables"]):
        problems.append(f"tables differ: missing {sorted(set(reference['tables']) - set(current['tables']))}, "
                        f"new {sorted(set(current['tables']) - set(reference['tables']))}")
    for path in sorted(set(reference["tables"]) & set(current["tables"])):
        ref, cur = reference["tables"][path], current["tables"][path]
        if ref["rows"] != cur["rows"]:
            problems.append(f"{path}: {cur['rows']} rows, reference {ref['rows']}")
        if ref["order"] != cur["order"]:
            problems.append(f"{path}: columns {cur['order']}, reference {ref['order']}")
        for col in set(ref["columns"]) & set(cur["columns"]):
            r, c = ref["columns"][col], cur["columns"][col]
            if r["dtype"] != c["dtype"]:
                problems.append(f"{path}:{col}: dtype {c['dtype']}, reference {r['dtype']}")
            elif "summary" in r and not exact:
                if not np.allclose(c["summary"], r["summary"], rtol=rtol, atol=1e-12):
                    problems.append(f"{path}:{col}: sum/min/max/nan {c['summary']}, reference {r['summary']}")
            elif col in ROUNDING_COUNTS and not exact:
                continue
            elif r["sha"] != c["sha"]:
                problems.append(f"{path}:{col}: values differ from the reference")
    missing = sorted(set(reference["scorecard"]) - set(current["scorecard"]))
    if missing:
        problems.append(f"scorecard: published values missing: {missing}")
    for pid in sorted(set(reference["scorecard"]) & set(current["scorecard"])):
        keep = [i for i, c in enumerate(SCORECARD_RESULTS) if c not in SCORECARD_JUDGMENTS]
        ref = [reference["scorecard"][pid][i] for i in keep]
        cur = [current["scorecard"][pid][i] for i in keep]
        same = all((a == b) or (not exact and isinstance(a, float) and isinstance(b, float)
                               and np.isclose(a, b, rtol=rtol)) for a, b in zip(ref, cur))
        if not same or len(ref) != len(cur):
            problems.append(f"scorecard {pid}: {cur}, reference {ref} ({', '.join(SCORECARD_RESULTS)})")
    # Published values are drawn on the figures: a figure that gained published values since
    # the reference gained markers, so only its tables (compared above) must be equal.
    added = set(current["scorecard"]) - set(reference["scorecard"])
    redrawn = {f"figures/{current['scorecard_figures'][pid]}.png" for pid in added}
    if reference["cpu"] == first_cpu:  # recorded before the restyling
        redrawn |= {f"figures/{f}.png" for f in RESTYLED}
    if exact:
        if set(reference["figures"]) != set(current["figures"]):
            problems.append(f"figures differ: {sorted(set(reference['figures']) ^ set(current['figures']))}")
        for fig in sorted(set(reference["figures"]) & set(current["figures"]) - redrawn):
            if reference["figures"][fig] != current["figures"][fig]:
                problems.append(f"{fig}: pixels differ from the reference")
    return problems


def updated(reference: dict[str, Any], current: dict[str, Any], figures: list[str]) -> dict[str, Any]:
    """``reference`` with the tables, PNGs and scorecard rows of ``figures`` taken from ``current``.

    Scorecard rows are taken only for published ids the reference already holds, so a
    value added later stays "added later" (its figure is compared by its tables only).
    """
    def ours(path: str) -> bool:
        return any(path.startswith((f"results/{f}/", f"figures/{f}.")) for f in figures)

    out = json.loads(json.dumps(reference))
    for part in ("tables", "figures"):
        out[part] = {k: v for k, v in out[part].items() if not ours(k)}
        out[part].update({k: v for k, v in current[part].items() if ours(k)})
    for pid, row in current["scorecard"].items():
        if pid in out["scorecard"] and current["scorecard_figures"].get(pid) in figures:
            out["scorecard"][pid] = row
    return out


def _write(reference: dict[str, Any]) -> None:
    REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")


def record_cpu(work: Path) -> Path:
    """Record the exact reference of this CPU from ``work``, which must match the first one."""
    current = fingerprint(work)
    first = json.loads(REFERENCE.read_text())
    if current["cpu"] == first["cpu"]:
        raise SystemExit("this is the first reference's CPU: use --record or --update")
    problems = compare(work, rtol=RECORD_CPU_RTOL, reference=first)
    if problems:
        raise SystemExit("the run differs from the first reference beyond float rounding:\n" + "\n".join(problems[:40]))
    path = cpu_reference_path(current["cpu"])
    path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--record":
        _write(fingerprint(Path(sys.argv[2])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--record-cpu":
        print(f"wrote {record_cpu(Path(sys.argv[2]))}")
    elif len(sys.argv) >= 4 and sys.argv[1] == "--update":
        current, reference = fingerprint(Path(sys.argv[2])), json.loads(REFERENCE.read_text())
        if current["cpu"] != reference["cpu"]:
            sys.exit("--update needs a run on the CPU that recorded the reference (its digests are exact)")
        _write(updated(reference, current, sys.argv[3:]))
    else:
        sys.exit(__doc__)
