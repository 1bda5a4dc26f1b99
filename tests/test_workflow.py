"""The Snakemake workflow: lint, format, planning, and the test preset end to end."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_support import BIN, ROOT, copy_repo
from workflow_support import run_snakemake as _snakemake


def _figures(config_name: str) -> list[str]:
    cfg = yaml.safe_load((ROOT / "config" / config_name).read_text())
    return sorted(cfg["arora2019"]["figures"])


def test_lint_passes() -> None:
    out = _snakemake("--lint", "--configfile", "config/test.yaml", "--nolock")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "good condition" in out.stdout + out.stderr


def test_snakefmt_check_passes() -> None:
    out = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_paper_preset_plans_every_figure() -> None:
    # Without the archive: archive/paper restores more jobs as it fills (every convex solve now).
    out = _snakemake("-n", "--forceall", "--nolock", "--quiet", "rules", "--config", "use_archive=False")
    assert out.returncode == 0, out.stdout + out.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, flags=re.M))
    figures = _all_figures("config.yaml")  # one render rule for both papers
    assert int(counts["render_figure"]) == len(figures)
    assert int(counts["report_pdf"]) == 1
    # N1/N2 alone are 144 runs in 6 batches; Figures 1 and 2 add many more.
    assert int(counts["train_factorization_batch"]) >= 6
    assert int(counts["min_nuclear_norm"]) >= 2


def test_bad_config_fails_before_any_job(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("arora2019:\n  matrix_sise: 10\n")
    out = _snakemake("-n", "--nolock", "--configfile", str(bad))
    assert out.returncode != 0
    assert "matrix_sise" in out.stdout + out.stderr


def test_missing_local_data_stops_only_the_jobs_that_read_it() -> None:
    missing = ['data={"movielens": {"path": "no/such/u.data"}}',
               'razin2020={"data": {"source": "shared", "data_dir": "no/such/dir"}}']
    # restored from the archive, nothing reads the data
    out = _snakemake("-n", "--nolock", "figures/arora2019_fig3.pdf", "--config", *missing)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    out = _snakemake("-n", "--nolock", "figures/arora2019_fig3.pdf", "--config", *missing, "recompute=[arora2019_fig3]")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "data.movielens.path: file 'no/such/u.data' does not exist" in text
    out = _snakemake("-n", "--nolock", "figures/razin2020_fig1.pdf", "--config", *missing, "recompute=[razin2020_fig1]")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "razin2020.data.data_dir: file 'no/such/dir/dmf/" in text


@pytest.fixture(scope="module")
def test_preset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test preset, end to end, in a copy of the repository."""
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    copy_repo(work)
    # Without TeX everything but the PDF (the determinism test below needs no TeX).
    targets = [] if shutil.which("latexmk") else [f"figures/{f}.pdf" for f in _all_figures("test.yaml")]
    out = _snakemake(*targets, "--cores", "2", "--configfile", "config/test.yaml", cwd=work, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    (work / "snakemake.out").write_text(out.stdout + out.stderr)  # for the console checks
    assert "Estimated CPU time: about" in out.stderr  # printed before the first job
    return work


def test_figure_tables_and_figures_equal_the_reference(test_preset_run: Path) -> None:
    """The package redesign changed no number: every figure table, figure and the scorecard
    equal the pre-redesign reference (tests/preset_reference.py), renamed columns aside."""
    from preset_reference import compare

    problems = compare(test_preset_run)
    assert not problems, "\n".join(problems[:40])


def _all_figures(config_name: str) -> list[str]:
    """Every figure of a preset, both papers (a preset inherits config.yaml's Razin & Cohen figures)."""
    cfg = yaml.safe_load((ROOT / "config" / config_name).read_text())
    razin = (cfg.get("razin2020") or {}).get("figures") or {}
    return sorted(cfg["arora2019"]["figures"]) + sorted(razin)


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs TeX (scripts/setup.sh installs it)")
def test_test_preset_builds_pdf_with_every_figure(test_preset_run: Path) -> None:
    pdf = test_preset_run / "paper" / "build" / "report.pdf"
    assert pdf.stat().st_size > 10_000
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for figure in _figures("test.yaml"):
        assert (test_preset_run / "figures" / f"{figure}.pdf").stat().st_size > 1000
        assert figure.replace("_", "") in text.replace("_", "").replace("-\n", ""), figure
    assert "Published versus reproduced" in text


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_a_complete_build_is_at_rest_whatever_the_hash_seed(test_preset_run: Path, hash_seed: str) -> None:
    """Plain `snakemake -n` after the build plans nothing: no rule's params, inputs or tables follow
    Python's hash order (the build ran under the interpreter's own, random, seed)."""
    import os

    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "all", "--configfile", "config/test.yaml"],
                          cwd=test_preset_run, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Nothing to be done" in out and "Job stats" not in out, out[-3000:]


def test_jobs_stay_within_their_declared_memory(test_preset_run: Path) -> None:
    """Snakemake's benchmark files (max_rss) of the data and training jobs stay below the peak
    implicit_reg.pipeline.memory estimated for them, which the rules declare as mem_mb."""
    from implicit_reg.pipeline import memory
    from implicit_reg.arora2019.plan import build_plan
    from implicit_reg.pipeline.config import load_schema, validate_config

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    test = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    from snakemake.utils import update_config

    update_config(cfg, test)
    plan = build_plan(validate_config(cfg, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")))
    estimates = {f"ground_truth/{d.ground_truth_name}": memory.ground_truth_mb(d) for d in plan.datasets.values()}
    estimates |= {f"observations/{d.ground_truth_name}-m{d.observations_suffix}": memory.observations_mb(d)
                  for d in plan.datasets.values()}
    estimates |= {f"train_factorization_batch/{name}": memory.batch_mb(b, cfg["dtype"])
                  for name, b in plan.batches.items()}
    checked = 0
    for job, estimate in estimates.items():
        path = test_preset_run / "benchmarks" / f"{job}.tsv"
        if path.is_file():
            header, *rows = path.read_text().splitlines()
            peak = float(dict(zip(header.split("\t"), rows[-1].split("\t")))["max_rss"])
            assert peak <= estimate, (job, peak, estimate)
            checked += 1
    assert checked >= 10, checked


def _tables(work: Path) -> dict[str, object]:
    """Every table and array file the pipeline computed, by path (notebooks and figures aside)."""
    import numpy as np
    import pandas as pd

    out = {}
    for path in sorted((work / "results").rglob("*")):
        rel = str(path.relative_to(work))
        if path.suffix == ".parquet":
            out[rel] = pd.read_parquet(path)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                out[rel] = {k: z[k] for k in z.files}
    return out


def test_rerun_gives_identical_parquet(test_preset_run: Path) -> None:
    """Same config, same machine, every job run again: bit-identical values in every table of every
    figure (both papers) and every array, all columns but the wall-clock times. No TeX needed."""
    import numpy as np
    import pandas as pd

    before = _tables(test_preset_run)
    figures = _all_figures("test.yaml")
    assert all(f"results/{f}/runs.parquet" in before for f in figures), sorted(before)
    # Finished trainings and solves are read, never rerun (their job records say they are
    # done): without the records, the plan trains every run again, in the same batches.
    # --forceall then recomputes the data, the Razin & Cohen jobs and every table.
    for record in (test_preset_run / "results").rglob("*provenance.json"):
        record.unlink()
    targets = [t for t in before if t.endswith(".parquet") or t.endswith(".npz")]
    out = _snakemake(*targets, "--forceall", "--cores", "2", "--configfile", "config/test.yaml",
                     cwd=test_preset_run, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "train_factorization_batch" in out.stdout + out.stderr and "min_nuclear_norm" in out.stdout + out.stderr
    after = _tables(test_preset_run)
    assert after.keys() == before.keys()
    for name, old in before.items():
        new = after[name]
        if isinstance(old, dict):
            assert old.keys() == new.keys(), name
            for key in old:
                np.testing.assert_array_equal(old[key], new[key], err_msg=f"{name}:{key}")
            continue
        volatile = [c for c in old.columns if "wall" in c or "seconds" in c]
        pd.testing.assert_frame_equal(old.drop(columns=volatile), new.drop(columns=volatile), check_exact=True,
                                      obj=name)


def test_both_gradient_paths_ran_in_the_test_preset(test_preset_run: Path) -> None:
    """The preset's fraction threshold sends MovieLens to the sampled path, completion to the dense one."""
    logs = test_preset_run / "logs" / "train_factorization_batch"
    movielens = [p.read_text() for p in logs.glob("movielens-*.log")]
    completion = [p.read_text() for p in logs.glob("completion-*.log")]
    assert movielens and completion
    assert all("sampled gradients" in text for text in movielens)
    assert all("dense gradients" in text for text in completion)


def _all_figures(config_name: str) -> list[str]:
    cfg = yaml.safe_load((ROOT / "config" / config_name).read_text())
    return sorted(cfg["arora2019"]["figures"]) + sorted(cfg["razin2020"]["figures"])


def test_snakemake_report_shows_every_figure(test_preset_run: Path) -> None:
    out = _snakemake("--report", "report.html", "--configfile", "config/test.yaml", "--nolock",
                     cwd=test_preset_run, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    html = (test_preset_run / "report.html").read_text()
    for figure in _all_figures("test.yaml"):
        for ext in ("png", "pdf"):
            assert f"figures/{figure}.{ext}" in html, figure
    # captions name the paper's figure and the notebook; one category per paper
    for text in ("Arora et al. (2019), Figure 1", "Arora et al. (2019), Figure 6",
                 "Razin &amp; Cohen (2020), Figure 2", "workflow/notebooks/arora2019_dynamics.py",
                 "workflow/notebooks/razin2020_unobserved_vs_loss.py"):
        assert text in html or text.replace("&amp;", "&") in html, text
    assert "published_vs_reproduced.csv" in html
    assert "paper/generated/provenance.tex" in html


def test_a_run_prints_no_kernel_warnings(test_preset_run: Path) -> None:
    console = (test_preset_run / "snakemake.out").read_text()
    assert "render_figure" in console  # the figures were rendered in this run
    assert "without encryption" not in console
    assert "IPKernelApp] WARNING" not in console


def test_every_table_carries_its_provenance(test_preset_run: Path) -> None:
    import pandas as pd

    from implicit_reg.core.table_io import read_table_provenance

    paths = sorted((test_preset_run / "results").rglob("*.parquet"))
    assert len(paths) > 20
    for path in paths:
        prov = read_table_provenance(path)
        assert prov["commit"] == "unknown", path  # the copy has no .git
        assert len(prov["config_hash"]) == 12 and prov["numerics_version"], path
        df = pd.read_parquet(path)
        floats = {c for c in df.columns if pd.api.types.is_float_dtype(df[c])}
        assert floats <= set(prov["units"]), (path, floats - set(prov["units"]))
    hashes = {read_table_provenance(p)["config_hash"] for p in paths}
    assert len(hashes) == 1  # one config for the whole run


def test_every_figure_is_a_target_by_its_name() -> None:
    """`snakemake <figure>` builds that figure: one target rule per figure of both papers."""
    figures = _all_figures("test.yaml")
    out = _snakemake(*figures, "-n", "--forceall", "--nolock", "--quiet", "rules", "--configfile", "config/test.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, flags=re.M))
    assert all(counts.get(figure) == "1" for figure in figures), counts
    assert int(counts["render_figure"]) == len(figures) and "report_pdf" not in counts


def test_training_logs_name_the_figures_they_serve(test_preset_run: Path) -> None:
    logs = {rule: sorted((test_preset_run / "logs" / rule).glob("*.log"))
            for rule in ("train_factorization_batch", "min_nuclear_norm", "razin2020_dmf_batch", "razin2020_tc_train")}
    for rule, paths in logs.items():
        assert paths, rule
        for path in paths:
            first = path.read_text().splitlines()[0]
            assert re.search(r"serves: (arora2019|razin2020)_\w+", first), (path, first)
    batch = logs["train_factorization_batch"][0].read_text().splitlines()[0]
    assert "arora2019_" in batch and "razin2020_" not in batch
