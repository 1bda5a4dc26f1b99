"""Execute the Arora et al. (2019) figure notebooks on small synthetic tables.

Each notebook (jupytext percent format) is converted with
``jupytext --to ipynb --set-kernel -`` and run with papermill's Python API,
with parameters pointing into ``tmp_path``. The synthetic runs tables follow
the contract of ``docs/architecture.md`` (realistic magnitudes from the spec,
fake numbers) and contain one diverged run with NaN metrics and one run that
hit the iteration cap, which the executed notebook must report.

Each notebook execution costs ~5-8 s (kernel start, imports, rendering); the
four main tests take ~25-30 s together. The two variant tests (sensing, log
axis, reduced presets, single seed) are marked ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "workflow" / "notebooks"
N = 100  # matrix size of the synthetic ground truth

RUN_COLUMNS = [
    "run_id", "paper", "figure", "method", "task", "rank", "n_obs", "depth", "init",
    "init_scale", "lr", "optimizer", "seed", "final_train_loss", "test_mse",
    "recon_error_sq", "recon_error", "nuclear_norm", "effective_rank", "iterations",
    "wall_seconds", "status", "solver_iterations",
]


# --------------------------------------------------------------------------
# Synthetic runs tables (fake numbers in realistic ranges, spec §2 and §3)
# --------------------------------------------------------------------------


def _gd_metrics(rng: np.random.Generator, task: str, rank: int, m: int, depth: int,
                init_scale: float) -> tuple[float, float, float]:
    """Fake (recon_error_sq, nuclear_norm, effective_rank) of one GD run."""
    dof = rank * (2 * N - rank)
    gt_nuc = 219.4 if rank == 5 else 330.0
    noise = float(np.exp(rng.normal(0.0, 0.12)))
    if depth <= 2:
        ratio = (init_scale / 1e-3) ** 0.2
        err = min(0.6, 0.1 * ratio * np.exp(-(m - 2.05 * dof) / (0.41 * dof))) + 5e-6
        erank = rank * (1 + 1.2 * ratio * min(1.0, np.exp(-(m - 2.05 * dof) / (0.6 * dof))))
    else:
        err = min(0.6, 0.5 * np.exp(-(m - dof) / (0.12 * dof))) + 3e-5 * (1 + 0.1 * (depth - 3))
        erank = rank * (1 + 0.8 * min(1.0, np.exp(-(m - dof) / (0.15 * dof)))) - 0.1
    if task == "sensing":
        err *= 0.4
    err *= noise
    nuc = gt_nuc - 4.0 * min(1.0, err / 0.05) + rng.normal(0.0, 0.05)
    return err, nuc, erank * float(np.exp(rng.normal(0.0, 0.02)))


def synthetic_runs(
    *,
    figure: str,
    task: str = "completion",
    ranks: tuple[int, ...] = (5,),
    n_obs: tuple[int, ...] = (2000, 5000),
    depths: tuple[int, ...] = (2, 3, 4),
    init_scales: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6),
    lrs: tuple[float, ...] = (1e-3, 3e-4),
    seeds: tuple[int, ...] = (0, 1, 2),
    depth2_extra_inits: tuple[float, ...] = (),
    baselines: bool = True,
    diverged: dict | None = None,
    capped: dict | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A runs table following the Arora runs contract (docs/architecture.md).

    ``diverged`` / ``capped`` select (by key columns) the GD runs given status
    ``diverged`` (NaN metrics) and ``max_iters`` (finite metrics).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict] = []

    def matches(sel: dict | None, row: dict) -> bool:
        return sel is not None and all(np.isclose(row[k], v) for k, v in sel.items())

    for rank in ranks:
        for m in n_obs:
            for depth in depths:
                inits = list(init_scales) + (list(depth2_extra_inits) if depth == 2 else [])
                for init_scale in inits:
                    for lr in lrs:
                        for s in seeds:
                            err, nuc, erank = _gd_metrics(rng, task, rank, m, depth, init_scale)
                            row = dict(
                                run_id=f"{figure}-r{rank}-m{m}-d{depth}-i{init_scale:g}-lr{lr:g}-s{s}",
                                paper="arora2019", figure=figure, method="deep_factorization",
                                task=task, rank=rank, n_obs=m, depth=depth, init="gaussian",
                                init_scale=init_scale, lr=lr, optimizer="grouprmsprop", seed=s,
                                final_train_loss=9.9e-7, test_mse=err, recon_error_sq=err,
                                recon_error=np.sqrt(err), nuclear_norm=nuc, effective_rank=erank,
                                iterations=int(rng.integers(2_000, 60_000)),
                                wall_seconds=float(rng.uniform(5, 60)), status="converged",
                                solver_iterations=-1,
                            )
                            if matches(diverged, row):
                                row.update(status="diverged", final_train_loss=np.nan, test_mse=np.nan,
                                           recon_error_sq=np.nan, recon_error=np.nan,
                                           nuclear_norm=np.nan, effective_rank=np.nan, iterations=137)
                            elif matches(capped, row):
                                row.update(status="max_iters", iterations=1_000_000,
                                           final_train_loss=3e-5)
                            rows.append(row)
            if baselines:
                dof = rank * (2 * N - rank)
                gt_nuc = 219.4 if rank == 5 else 330.0
                cvx_err = min(0.6, 0.106 * np.exp(-(m - 2.05 * dof) / (0.3 * dof))) + 8e-7
                rows.append(dict(
                    run_id=f"{figure}-r{rank}-m{m}-cvx", paper="arora2019", figure=figure,
                    method="min_nuclear_norm", task=task, rank=rank, n_obs=m, depth=0, init="none",
                    init_scale=np.nan, lr=np.nan, optimizer="scs", seed=-1, final_train_loss=np.nan,
                    test_mse=cvx_err, recon_error_sq=cvx_err, recon_error=np.sqrt(cvx_err),
                    nuclear_norm=gt_nuc - 9.25 * min(1.0, cvx_err / 0.106),
                    effective_rank=rank * (1 + 0.9 * min(1.0, cvx_err / 0.106)) - 0.1,
                    iterations=-1, wall_seconds=12.0, status="optimal", solver_iterations=2500,
                ))
                rows.append(dict(
                    run_id=f"{figure}-r{rank}-m{m}-gt", paper="arora2019", figure=figure,
                    method="ground_truth", task=task, rank=rank, n_obs=m, depth=0, init="none",
                    init_scale=np.nan, lr=np.nan, optimizer="none", seed=-1, final_train_loss=np.nan,
                    test_mse=0.0, recon_error_sq=0.0, recon_error=0.0, nuclear_norm=gt_nuc,
                    effective_rank=rank - 0.1, iterations=-1, wall_seconds=0.0, status="exact",
                    solver_iterations=-1,
                ))
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.astype({"rank": "int64", "n_obs": "int64", "depth": "int64", "seed": "int64",
                      "iterations": "int64", "solver_iterations": "int64"})


def fig1_runs(**kw) -> pd.DataFrame:
    """NeurIPS Fig 1 style table: ranks 5 and 10 over an #obs grid, extra depth-2 inits."""
    r5 = synthetic_runs(figure="fig1", ranks=(5,), n_obs=tuple(range(1000, 3501, 250)),
                        init_scales=(1e-3,), lrs=(1e-3,), depth2_extra_inits=(5e-4, 2.5e-4),
                        baselines=False, **kw)
    r10 = synthetic_runs(figure="fig1", ranks=(10,), n_obs=tuple(range(2000, 6001, 500)),
                         init_scales=(1e-3,), lrs=(1e-3,), depth2_extra_inits=(5e-4, 2.5e-4),
                         baselines=False, seed=1, **{k: v for k, v in kw.items() if k != "seed"})
    return pd.concat([r5, r10], ignore_index=True)


def fig2_runs(**kw) -> pd.DataFrame:
    """NeurIPS Fig 2 style table: rank 5, #obs grid, (lr × init) series, CVX and ground truth."""
    return synthetic_runs(figure="fig2", ranks=(5,), n_obs=tuple(range(1000, 3501, 500)),
                          init_scales=(1e-3, 1e-4, 1e-5, 1e-6), lrs=(1e-3, 3e-4), **kw)


def n1_runs(**kw) -> pd.DataFrame:
    """Notebook Figure 1/2 style table: #obs 2000 and 5000, 4 init scales, 2 lrs."""
    return synthetic_runs(figure="n1", **kw)


# --------------------------------------------------------------------------
# Notebook execution
# --------------------------------------------------------------------------


def _to_ipynb(notebook: Path, out: Path) -> Path:
    """``jupytext --to ipynb --set-kernel -`` (the rules' conversion), run in-process.

    ``--set-kernel -`` needs a kernelspec whose argv[0] is this interpreter's
    absolute path; a pip-installed ``share/jupyter/kernels/python3`` has the bare
    ``python``, so fall back to naming the ``python3`` kernel explicitly.
    """
    from jupytext.cli import jupytext as jupytext_cli

    args = ["--to", "ipynb", "-o", str(out), "--quiet"]
    try:
        jupytext_cli([*args, "--set-kernel", "-", str(notebook)])
    except ValueError as err:
        assert "No kernel found that matches" in str(err), err
        jupytext_cli([*args, "--set-kernel", "python3", str(notebook)])
    return out


def run_notebook(name: str, tmp_path: Path, parameters: dict) -> tuple[Path, Path, str]:
    """Execute ``workflow/notebooks/<name>.py``; return (pdf, png, printed text)."""
    papermill = pytest.importorskip("papermill")
    pytest.importorskip("jupytext")
    src = NOTEBOOKS / f"{name}.py"
    assert src.exists(), src
    nb_in = _to_ipynb(src, tmp_path / f"{name}.in.ipynb")
    nb_out = tmp_path / f"{name}.out.ipynb"
    pdf, png = tmp_path / "figures" / f"{name}.pdf", tmp_path / "figures" / f"{name}.png"
    params = {"figure_pdf": str(pdf), "figure_png": str(png), **parameters}
    papermill.execute_notebook(str(nb_in), str(nb_out), parameters=params, kernel_name="python3",
                               cwd=str(REPO), progress_bar=False)
    executed = json.loads(nb_out.read_text())
    text = "".join(
        "".join(out.get("text", ""))
        for cell in executed["cells"] if cell["cell_type"] == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "stream"
    )
    return pdf, png, text


def _assert_figure(pdf: Path, png: Path) -> None:
    assert pdf.exists() and pdf.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    assert png.exists() and png.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG")


def test_synthetic_tables_follow_contract() -> None:
    for df in (fig1_runs(), fig2_runs(), n1_runs()):
        assert list(df.columns) == RUN_COLUMNS
        assert set(df["method"]) <= {"deep_factorization", "min_nuclear_norm", "ground_truth"}
        assert df["run_id"].is_unique


def test_error_vs_observations(tmp_path: Path) -> None:
    runs = fig1_runs(diverged=dict(rank=5, n_obs=1500, depth=4, seed=1),
                     capped=dict(rank=10, n_obs=3000, depth=3, seed=0))
    runs_path = tmp_path / "fig1_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_error_vs_observations", tmp_path,
                                  {"runs_path": str(runs_path)})
    _assert_figure(pdf, png)
    assert "1 diverged" in text
    assert "1 hit cap" in text
    assert "depth 2, init/2" in text and "depth 2, init/4" in text


@pytest.mark.slow
def test_error_vs_observations_sensing_log_reduced(tmp_path: Path) -> None:
    """Sensing variant, log y, no depth 4, a single seed (std 0), one rank."""
    runs = synthetic_runs(figure="fig4", task="sensing", ranks=(5,), n_obs=(1000, 1500, 2000),
                          depths=(2, 3), init_scales=(1e-3,), lrs=(1e-3,), seeds=(0,),
                          depth2_extra_inits=(5e-4,), baselines=False)
    runs_path = tmp_path / "fig4_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_error_vs_observations", tmp_path,
                                  {"runs_path": str(runs_path), "task": "sensing", "y_scale": "log"})
    _assert_figure(pdf, png)
    assert "non-converged runs: none" in text.lower()


def test_nuclear_norm_vs_observations(tmp_path: Path) -> None:
    runs = fig2_runs(diverged=dict(n_obs=1500, depth=3, init_scale=1e-3, lr=1e-3, seed=2))
    runs_path = tmp_path / "fig2_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_nuclear_norm_vs_observations", tmp_path,
                                  {"runs_path": str(runs_path)})
    _assert_figure(pdf, png)
    assert "1 diverged" in text
    assert "min_nuclear_norm" in text


def test_error_vs_init(tmp_path: Path) -> None:
    runs = n1_runs(diverged=dict(n_obs=2000, depth=4, init_scale=1e-6, lr=3e-4, seed=0))
    runs_path = tmp_path / "n1_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_error_vs_init", tmp_path, {"runs_path": str(runs_path)})
    _assert_figure(pdf, png)
    assert "1 diverged" in text


def test_norms_vs_init(tmp_path: Path) -> None:
    runs = n1_runs(diverged=dict(n_obs=5000, depth=2, init_scale=1e-4, lr=1e-3, seed=1),
                   capped=dict(n_obs=2000, depth=3, init_scale=1e-6, lr=1e-3, seed=0))
    runs_path = tmp_path / "n2_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_norms_vs_init", tmp_path, {"runs_path": str(runs_path)})
    _assert_figure(pdf, png)
    assert "1 diverged" in text
    assert "1 hit cap" in text


@pytest.mark.slow
def test_norms_vs_init_reduced_single_seed(tmp_path: Path) -> None:
    """Reduced preset: depths 2 and 3 only, one seed, no baselines, sensing."""
    runs = synthetic_runs(figure="na2", task="sensing", n_obs=(2000,), depths=(2, 3),
                          init_scales=(1e-3, 1e-5), lrs=(1e-3,), seeds=(0,), baselines=False)
    runs_path = tmp_path / "na2_runs.parquet"
    runs.to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook("arora2019_norms_vs_init", tmp_path,
                                  {"runs_path": str(runs_path), "task": "sensing"})
    _assert_figure(pdf, png)
    assert "non-converged runs: none" in text.lower()


def test_failing_notebook_names_itself_and_the_error(tmp_path: Path) -> None:
    from implicit_reg.figures.notebooks import NotebookFailed, execute_notebook

    source = tmp_path / "broken_figure.py"
    source.write_text(
        '# %% tags=["parameters"]\nruns_path = "x"\n\n# %%\nraise ValueError(f"cannot read {runs_path}")\n'
    )
    executed = tmp_path / "out" / "broken_figure.ipynb"
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(source, executed, {"runs_path": "results/none.parquet"})
    message = str(err.value)
    assert str(source) in message and "ValueError" in message and "results/none.parquet" in message
    assert executed.exists()  # the executed copy, error included, is kept for reading


def _published_count(figure: str, metric: str | None = None) -> int:
    from implicit_reg.scorecard.published import load_published

    return sum(e.figure == figure and (metric is None or e.metric == metric)
               for e in load_published(REPO / "config" / "published.yaml"))


@pytest.mark.parametrize(("notebook", "figure", "metric"), [
    ("arora2019_error_vs_init", "arora2019_n1", "recon_error_sq"),
    ("arora2019_norms_vs_init", "arora2019_n2", None),
])
def test_published_values_drawn_on_the_figure(tmp_path: Path, notebook: str, figure: str, metric: str | None) -> None:
    """Every published value of the figure (paper-scale grid) is drawn, read from config/published.yaml."""
    runs_path = tmp_path / figure / "runs.parquet"  # the figure name comes from the table's directory
    runs_path.parent.mkdir()
    n1_runs().to_parquet(runs_path, index=False)
    pdf, png, text = run_notebook(notebook, tmp_path, {
        "runs_path": str(runs_path), "published_path": str(REPO / "config" / "published.yaml")})
    _assert_figure(pdf, png)
    expected = _published_count(figure, metric)
    assert expected > 0 and f"published values drawn: {expected}\n" in text
    _, _, none = run_notebook(notebook, tmp_path, {
        "runs_path": str(runs_path), "published_path": str(tmp_path / "absent.yaml")})
    assert "published values drawn: 0\n" in none


def test_failed_notebook_copy_survives_where_the_message_points(tmp_path: Path) -> None:
    """Snakemake deletes a failed job's outputs; the copy the message names is outside them."""
    from implicit_reg.figures.notebooks import NotebookFailed, execute_notebook

    source = tmp_path / "broken_figure.py"
    source.write_text('# %% tags=["parameters"]\nfail = True\n\n# %%\nif fail:\n    raise ValueError("broken")\n')
    executed = tmp_path / "results" / "broken_figure.ipynb"
    kept = tmp_path / "logs" / "render_figure" / "broken_figure.failed.ipynb"
    with pytest.raises(NotebookFailed) as err:
        execute_notebook(source, executed, {"fail": True}, failed_copy=kept)
    assert str(kept) in str(err.value)
    executed.unlink()  # as Snakemake does with the outputs of a failed job
    assert "broken" in kept.read_text()
    execute_notebook(source, executed, {"fail": False}, failed_copy=kept)
    assert executed.exists() and not kept.exists()  # no stale copy once the notebook passes
