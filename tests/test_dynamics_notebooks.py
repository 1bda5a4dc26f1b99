"""Execute the dynamics notebooks (Figure 3 / 6 and the Theorem 3 rate check) on real runs.

Unlike ``test_notebooks.py`` (fake runs tables), the trajectories here come
from the project's engine: tiny 12×12 rank-2 completion and sensing problems,
depths 1, 2, 3, identity init 1e-3, plain GD, logged every 10 iterations with
the alignment statistics and ``grad_proj_r``. The tables are built by
``implicit_reg.arora2019.tables`` exactly as the training adapter does. A learning rate
of 0.3 is small enough for the gradient-flow formula of Theorem 3 to hold to
about 1% per logged interval, so the rate notebook must find a small median
relative error (the assertion allows 10%).

Cost: ~4 s of training (one thread) plus two notebook executions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019 import tables
from implicit_reg.arora2019.initialization import initial_factors
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import BatchTrainer
from implicit_reg.core import table_io  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "workflow" / "notebooks"

N, RANK, N_OBS = 12, 2, 70
LR, INIT_SCALE = 0.3, 1e-3
SCHEDULE = dict(optimizer="gd", max_iters=3000, log_every=10, train_loss_tol=1e-5,
                log_alignment=True, n_singular_values=10, sync_every=10, checkpoint_seconds=0)


def _train(task: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and trajectories tables of depths 1, 2, 3 on one small instance of ``task``."""
    rng = np.random.default_rng(seed)
    ground_truth = matrix_data.low_rank_ground_truth(N, N, RANK, rng)
    make = matrix_data.completion_arrays if task == "completion" else matrix_data.sensing_arrays
    problem = build_problem(task, make(ground_truth, N_OBS, rng), ground_truth)
    runs, trajectories = [], []
    for depth in (1, 2, 3):
        spec = {
            "task": task, "rank": RANK, "n_obs": N_OBS, "depth": depth,
            "schedule": {"optimizer": "gd"},
            "runs": [{"run_id": f"{task}-d{depth}", "init": "identity", "init_scale": INIT_SCALE,
                      "lr": LR, "seed": 0}],
        }
        initial = [initial_factors(problem.shape, depth, "identity", INIT_SCALE, rng)]
        result = BatchTrainer(problem, initial, [LR], Schedule(**SCHEDULE)).run()
        run_table = tables.batch_runs_table(spec, result.final, result.status)
        runs.append(run_table)
        trajectories.append(tables.batch_trajectories_table(spec, result.trajectories, run_table))
    return pd.concat(runs, ignore_index=True), pd.concat(trajectories, ignore_index=True)


@pytest.fixture(scope="module")
def dynamics_tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``runs.parquet`` and ``trajectories.parquet`` of real completion and sensing runs."""
    out = tmp_path_factory.mktemp("dynamics")
    parts = [_train("completion", 0), _train("sensing", 1)]
    runs = pd.concat([p[0] for p in parts], ignore_index=True)
    traj = pd.concat([p[1] for p in parts], ignore_index=True)
    for df in (runs, traj):
        df["figure"] = "test_dynamics"
    runs_path, traj_path = out / "runs.parquet", out / "trajectories.parquet"
    provenance = {"commit": "test", "config_hash": "test", "numerics_version": {}}
    table_io.write_parquet(runs, runs_path, provenance)
    table_io.write_parquet(traj, traj_path, provenance)
    return runs_path, traj_path


def _to_ipynb(notebook: Path, out: Path) -> Path:
    """``jupytext --to ipynb --set-kernel -``, falling back to the ``python3`` kernel by name."""
    from jupytext.cli import jupytext as jupytext_cli

    args = ["--to", "ipynb", "-o", str(out), "--quiet"]
    try:
        jupytext_cli([*args, "--set-kernel", "-", str(notebook)])
    except ValueError as err:
        assert "No kernel found that matches" in str(err), err
        jupytext_cli([*args, "--set-kernel", "python3", str(notebook)])
    return out


def _run_notebook(name: str, tmp_path: Path, parameters: dict) -> tuple[Path, Path, str]:
    """Execute ``workflow/notebooks/<name>.py``; return (pdf, png, printed text)."""
    papermill = pytest.importorskip("papermill")
    pytest.importorskip("jupytext")
    nb_in = _to_ipynb(NOTEBOOKS / f"{name}.py", tmp_path / f"{name}.in.ipynb")
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


def test_engine_logs_what_the_notebooks_need(dynamics_tables: tuple[Path, Path]) -> None:
    runs_path, traj_path = dynamics_tables
    runs, traj = pd.read_parquet(runs_path), pd.read_parquet(traj_path)
    assert len(runs) == 6 and set(runs["task"]) == {"completion", "sensing"}
    for col in ("sv_1", "sv_10", "grad_proj_1", "grad_proj_10", "align_diag_mean", "align_offdiag_std", "lr"):
        assert col in traj.columns, col
    # the last row of each run is its stopping iteration
    last = traj.groupby("run_id")["iteration"].max()
    assert (last == runs.set_index("run_id")["iterations"].reindex(last.index)).all()
    # depth 3 recovers the rank-2 matrix far better than depth 1 (Figure 3's message)
    err = runs.set_index(["task", "depth"])["recon_error_sq"]
    assert err[("completion", 3)] < 0.1 * err[("completion", 1)]


def test_dynamics_figure(dynamics_tables: tuple[Path, Path], tmp_path: Path) -> None:
    runs_path, traj_path = dynamics_tables
    pdf, png, text = _run_notebook("arora2019_dynamics", tmp_path, {
        "runs_path": str(runs_path), "trajectories_path": str(traj_path),
        "rows": ["completion", "sensing", "movielens"],
        "xlims": {"completion": None, "sensing": [None, 2000, None, 1500]},
    })
    _assert_figure(pdf, png)
    assert "row 'movielens' skipped" in text
    assert "recon_error_sq" in text and "0.0592" in text  # published value next to ours
    assert "half-crossing steps" in text
    assert "alignment completion depth 2" in text and "alignment sensing depth 2" in text


def test_singular_value_rates(dynamics_tables: tuple[Path, Path], tmp_path: Path) -> None:
    runs_path, traj_path = dynamics_tables
    pdf, png, text = _run_notebook("arora2019_singular_value_rates", tmp_path, {
        "runs_path": str(runs_path), "trajectories_path": str(traj_path),
    })
    _assert_figure(pdf, png)
    found = {
        (task, int(depth)): float(err)
        for task, depth, err in re.findall(r"rate check: task=(\w+) depth=(\d) median_rel_err=(\S+)", text)
    }
    assert set(found) == {(t, d) for t in ("completion", "sensing") for d in (1, 2, 3)}, text
    for (task, depth), err in found.items():
        assert err < 0.1, f"{task} depth {depth}: median relative error {err} (Theorem 3 rate check)\n{text}"
    assert "degenerate" in text  # the identity-init exclusion is reported
