"""An engine's reference output may change only together with its numerics version.

Archived results are keyed by :data:`implicit_reg.core.numerics.NUMERICS_VERSIONS`: a
change of an engine's numbers that keeps its version would silently mix old and new
numerics in the archive. Each engine here runs one tiny deterministic computation
(mirroring how its Snakemake adapter calls the library) and compares a handful of
output numbers with ``tests/data/numerics_reference.json``, recorded at the version
stored next to them:

* version unchanged, numbers unchanged (within float rounding): pass;
* version unchanged, numbers changed: fail -- bump the engine's version (archived
  results of that engine become stale), then re-record;
* version changed: fail until the reference is re-recorded for the new version::

      .venv/bin/python tests/test_numerics_version.py --record

``--record`` recomputes every engine, writes the engines whose version is new or
bumped, and refuses to overwrite an engine whose version did not change but whose
numbers did (that is the silent change this test exists to catch); ``--force``
overwrites those too (only when the *test's* computation itself was changed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

TESTS = Path(__file__).resolve().parent

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from implicit_reg.arora2019 import convex  # noqa: E402
from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019.initialization import initial_factors  # noqa: E402
from implicit_reg.arora2019.observations import build_problem  # noqa: E402
from implicit_reg.arora2019.schedule import Schedule  # noqa: E402
from implicit_reg.arora2019.trainer import BatchResult, BatchTrainer  # noqa: E402
from implicit_reg.core.numerics import NUMERICS_VERSIONS  # noqa: E402
from implicit_reg.core.seeding import derive_seed, rng_for  # noqa: E402
from implicit_reg.razin2020 import cp_rank as cr  # noqa: E402
from implicit_reg.razin2020 import tensor_completion as tc  # noqa: E402
from implicit_reg.razin2020 import tensor_data as td  # noqa: E402
from implicit_reg.razin2020 import two_by_two as tt  # noqa: E402
from implicit_reg.razin2020 import two_by_two_problem as tp  # noqa: E402

REFERENCE = TESTS / "data" / "numerics_reference.json"
RECORD_COMMAND = ".venv/bin/python tests/test_numerics_version.py --record"

#: The pipeline's base seed (config/config.yaml), so the draws are the pipeline's kind.
BASE_SEED = 20191208

Value = Union[int, float, str]
Values = dict[str, Value]


# --------------------------------------------------------------------------
# matrix_data: seeded ground truth, observation draws, measurement operator
# --------------------------------------------------------------------------


def compute_matrix_data() -> Values:
    """Summaries of a 12×12 rank-2 ground truth, its observations and a MovieLens split.

    Seeds are derived as in ``make_ground_truth.py`` / ``make_observations.py`` /
    ``make_movielens_split.py``, so a change of the seed derivation shows here too.
    """
    n, rank, n_obs = 12, 2, 60
    gt_rng = rng_for(BASE_SEED, "ground_truth", "completion", rank, n)
    gt = matrix_data.low_rank_ground_truth(n, n, rank, gt_rng)
    comp = matrix_data.completion_arrays(gt, n_obs, rng_for(BASE_SEED, "observations", "completion", rank, n, n_obs))
    sens = matrix_data.sensing_arrays(gt, n_obs, rng_for(BASE_SEED, "observations", "sensing", rank, n, n_obs))
    ratings = matrix_data.read_movielens(TESTS / "data" / "u.data")
    ml = matrix_data.movielens_arrays(ratings, 60, "seeded_permutation", rng_for(BASE_SEED, "movielens_split", 60))
    g = gt.astype(np.float64)
    return {
        # The seed derivation itself (integers: exact).
        "seed_ground_truth": derive_seed(BASE_SEED, "ground_truth", "completion", rank, n),
        "gt_sum": float(g.sum()),
        "gt_abs_sum": float(np.abs(g).sum()),
        "gt_0_0": float(g[0, 0]),
        "gt_5_7": float(g[5, 7]),
        "gt_11_11": float(g[11, 11]),
        "completion_index_sum": int(comp["indices"].sum()),
        "completion_first_index": int(comp["indices"][0]),
        "completion_last_index": int(comp["indices"][-1]),
        "completion_label_sum": float(comp["labels"].astype(np.float64).sum()),
        "completion_label_rms": matrix_data.check_label_rms(comp["labels"]),
        "sensing_matrix_abs_sum": float(np.abs(sens["measurements"].astype(np.float64)).sum()),
        "sensing_matrix_0_0": float(sens["measurements"][0, 0]),
        "sensing_matrix_last": float(sens["measurements"][-1, -1]),
        "sensing_label_sum": float(sens["labels"].astype(np.float64).sum()),
        "sensing_label_rms": matrix_data.check_label_rms(sens["labels"]),
        "movielens_train_row_sum": int(ml["train_rows"].sum()),
        "movielens_train_col_sum": int(ml["train_cols"].sum()),
        "movielens_train_value_sum": float(ml["train_values"].astype(np.float64).sum()),
        "movielens_test_count": int(ml["test_values"].size),
    }


# --------------------------------------------------------------------------
# Inputs of the downstream engines, built without matrix_data / tensor_completion
# on purpose: a (versioned) change of how the data are drawn must fail only the
# engine that draws them, not every engine that consumes them.
# --------------------------------------------------------------------------


def _matrix_instance(n: int, rank: int, n_obs: int, seed: int) -> tuple[np.ndarray, dict, dict]:
    """(ground truth, completion observations, sensing observations) in the observation-file format.

    Plain numpy draws shaped like matrix_data's: entry-RMS-1 rank-``rank`` float32
    truth, sorted row-major indices, N(0, 1/n²) float32 measurement rows.
    """
    rng = np.random.default_rng(seed)
    gt = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, n))
    gt = (gt * (n / np.linalg.norm(gt))).astype(np.float32)
    indices = np.sort(rng.choice(n * n, size=n_obs, replace=False)).astype(np.int64)
    completion = {"indices": indices, "labels": gt.reshape(-1)[indices]}
    matrix = (rng.standard_normal((n_obs, n * n)) / n).astype(np.float32)
    labels = (matrix.astype(np.float64) @ gt.reshape(-1).astype(np.float64)).astype(np.float32)
    return gt, completion, {"measurements": matrix, "labels": labels}


def _ratings_instance(n_train: int) -> dict[str, np.ndarray]:
    """The small tests/data/u.data ratings (40 items × 30 users) split at its first ``n_train`` rows."""
    raw = np.loadtxt(TESTS / "data" / "u.data", dtype=np.int64, delimiter="\t")
    rows, cols, values = raw[:, 1] - 1, raw[:, 0] - 1, raw[:, 2].astype(np.float32)
    out = {"shape": np.array([rows.max() + 1, cols.max() + 1], dtype=np.int64)}
    for name, part in (("train", slice(None, n_train)), ("test", slice(n_train, None))):
        out[f"{name}_rows"], out[f"{name}_cols"], out[f"{name}_values"] = rows[part], cols[part], values[part]
    return out


# --------------------------------------------------------------------------
# deep_factorization: batched GD / GroupRMSprop (dense completion, sensing, sampled MovieLens)
# --------------------------------------------------------------------------


def _train_batch(
    task: str,
    observations: dict[str, np.ndarray],
    ground_truth: np.ndarray | None,
    depth: int,
    runs: list[dict],
    optimizer: str,
    max_iters: int,
    train_loss_tol: float,
) -> BatchResult:
    """Train one batch exactly as ``workflow/scripts/train_factorization_batch.py`` does.

    The only place that calls the trainer: when its interface changes (e.g. the
    mixed-depth batches), adapt this function to the adapter and keep the numbers.
    Engine settings are config/config.yaml's (``engine``, ``arora2019.group_rmsprop``).
    """
    device, dtype = torch.device("cpu"), torch.float32
    problem = build_problem(task, observations, ground_truth, device, dtype, None, 0.05)
    initial = [
        initial_factors(problem.shape, depth, r["init"], r["init_scale"], np.random.default_rng(r["init_seed"]))
        for r in runs
    ]
    schedule = Schedule(
        optimizer=optimizer,
        max_iters=max_iters,
        log_every=100,
        train_loss_tol=train_loss_tol,
        rmsprop_alpha=0.99,
        rmsprop_eps=1e-4,
        n_singular_values=3,
        log_alignment=False,
        divergence_loss=1e30,
        sync_every=100,
        checkpoint_seconds=0,
    )
    trainer = BatchTrainer(problem, initial, [r["lr"] for r in runs], schedule, device, dtype, None)
    return trainer.run()


def _batch_values(prefix: str, result: BatchResult) -> Values:
    """Final metrics of every run of a batch, keyed ``prefix/run<i>/<name>``."""
    out: Values = {}
    for i, status in enumerate(result.status):
        key = f"{prefix}/run{i}"
        out[f"{key}/final_train_loss"] = float(result.final["final_train_loss"][i])
        out[f"{key}/recon_error"] = float(result.final["recon_error"][i])
        out[f"{key}/nuclear_norm"] = float(result.final["nuclear_norm"][i])
        out[f"{key}/iterations"] = int(result.final["iterations"][i])
        out[f"{key}/status"] = status
    return out


def compute_deep_factorization() -> Values:
    """Four dense batches (completion/sensing × depth 2/3 × GroupRMSprop/GD) and one sampled batch."""
    gt, comp, sens = _matrix_instance(12, 2, 60, seed=1)
    # 60 of 1200 entries = 5 %: the sampled (sparse) gradient path, as for MovieLens.
    ml = _ratings_instance(60)

    def runs(lr: float) -> list[dict]:
        # One gaussian and one identity init per batch (two init schemes, two step sizes).
        return [
            {"init": "gaussian", "init_scale": 1e-2, "init_seed": 10, "lr": lr},
            {"init": "identity", "init_scale": 1e-2, "init_seed": 11, "lr": lr * 0.5},
        ]

    # Stopping tolerances are chosen so that some runs stop (converged) at a
    # non-trivial iteration and others hit max_iters with a moderate loss, where
    # the numbers are well conditioned (no cancellation near zero).
    batches = [  # (name, task, observations, ground truth, depth, lr, optimizer, max_iters)
        ("completion_d2_rms", "completion", comp, gt, 2, 1e-2, "grouprmsprop", 400),
        ("completion_d3_gd", "completion", comp, gt, 3, 1.0, "gd", 400),
        ("sensing_d2_gd", "sensing", sens, gt, 2, 1.0, "gd", 400),
        ("sensing_d3_rms", "sensing", sens, gt, 3, 1e-2, "grouprmsprop", 400),
        ("movielens_d2_rms", "movielens", ml, None, 2, 5e-2, "grouprmsprop", 300),
    ]
    out: Values = {}
    for name, task, obs, truth, depth, lr, optimizer, max_iters in batches:
        out |= _batch_values(name, _train_batch(task, obs, truth, depth, runs(lr), optimizer, max_iters, 1e-2))
    return out


# --------------------------------------------------------------------------
# min_nuclear_norm: CVXPY + SCS
# --------------------------------------------------------------------------


#: config/config.yaml's convex section (solve_min_nuclear_norm.py passes it through
#: convex.task_settings; test_convex_settings_are_the_configs keeps the two equal).
CONVEX_CONFIG = {"epsilon": 1e-3, "solver_options": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 20000},
                 "sensing_solver_options": {"linear_solver": "mkl"}}


def _convex_values(task: str, n: int, n_obs: int, seed: int) -> Values:
    """Status, objective, error and one entry of a rank-1 instance's solve, as the adapter solves it."""
    gt, comp, sens = _matrix_instance(n, 1, n_obs, seed)
    cfg = convex.task_settings(task, CONVEX_CONFIG)
    res = convex.solve_observations(task, gt.shape, comp if task == "completion" else sens, cfg["epsilon"],
                                    cfg["solver_options"])
    g = gt.astype(np.float64)
    sol = res.solution.astype(np.float64)
    return {
        f"{task}/status": res.status,
        f"{task}/objective": float(res.objective),
        f"{task}/recon_error": float(np.linalg.norm(sol - g) / np.linalg.norm(g)),
        f"{task}/solution_0_0": float(sol[0, 0]),
    }


# Instances above the recovery threshold, so the minimizer is unique and SCS reaches
# "optimal" in a few thousand iterations (below it the minimizer is not unique and its
# entries differ between SCS modes by 1e-4).


def compute_min_nuclear_norm() -> Values:
    """Minimum nuclear norm of an 8×8 rank-1 completion instance (SCS)."""
    return _convex_values("completion", 8, 44, 5)


def compute_min_nuclear_norm_sensing() -> Values:
    """Minimum nuclear norm of a 6×6 rank-1 sensing instance (SCS with MKL Pardiso, slack form)."""
    return _convex_values("sensing", 6, 28, 6)


# --------------------------------------------------------------------------
# two_by_two: Razin & Cohen 2×2 deep matrix factorization (numba kernel)
# --------------------------------------------------------------------------


def compute_two_by_two() -> Values:
    """Four runs on the Figure 1 problem [[*, 1], [1, 0]], as ``razin2020_dmf_batch.py`` runs them."""
    problem = tp.make_completion_problem({(0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0})
    # Settings whose outputs are well conditioned: float64 reruns differ by < 5e-6.
    # (Depth-2 balanced runs are not: they sit near a saddle for ~2000 steps and a
    # float64 rerun moves their loss by 1e-3, so a rounding-level refactor could too.)
    configs = [
        tp.DMFRunConfig(2, 0.02, 1e-3, "gaussian", 1, 1),
        tp.DMFRunConfig(3, 0.02, 1e-3, "gaussian", 1, 1),
        tp.DMFRunConfig(3, 0.02, 1e-3, "balanced", 1, 1),
        tp.DMFRunConfig(4, 0.02, 1e-2, "balanced", 1, 1),
    ]
    batch = tt.init_batch([problem] * len(configs), configs, np.float32, 50, 1e-4, 10, 2000)
    tt.run_batch(batch, 1000, None, "auto")
    out: Values = {}
    for i, res in enumerate(tt.run_results(batch)):
        key = f"run{i}_depth{configs[i].depth}_{configs[i].init}"
        out[f"{key}/status"] = res.status
        out[f"{key}/iterations"] = res.final_iteration
        out[f"{key}/last_logged_loss"] = float(res.history["loss"][-1])
        out[f"{key}/abs_p11"] = float(abs(res.final_product[0, 0]))
        # Mid-trajectory, before the loss is small: the incremental-learning phase.
        out[f"{key}/abs_p11_at_500"] = float(abs(res.history["p11"][res.history["iteration"] == 500][0]))
    return out


# --------------------------------------------------------------------------
# tensor_completion: Razin & Cohen CP tensor completion
# --------------------------------------------------------------------------


def compute_tensor_completion() -> Values:
    """Two runs of order-3 (4×4×4, R = 16) CP completion from 40 entries, as ``razin2020_tc_train.py``."""
    data = td.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    observed = td.observed_indices(data, 40)
    # config/config.yaml's razin2020.tc optimizer settings; max_iters cut short.
    batch = tc.CPCompletionBatch(
        data.target, observed, [1e-2, 1e-3], [0, 1], lr=0.01, beta=0.99, eps=1e-6, check_every=100, tol=1e-6,
        patience=2, max_iters=300, device="cpu")
    batch.run(5000, None)
    out: Values = {}
    for i, res in enumerate(batch.results()):
        key = f"run{i}"
        out[f"{key}/status"] = res.status
        out[f"{key}/iterations"] = res.final_iteration
        out[f"{key}/final_train_loss"] = res.final_train_loss
        out[f"{key}/recon_error"] = res.reconstruction_error
        for t in (100, 200):
            out[f"{key}/train_loss_at_{t}"] = float(res.history["train_loss"][res.history["iteration"] == t][0])
    return out


# --------------------------------------------------------------------------
# cp_rank: CP-rank estimates and the linear baseline
# --------------------------------------------------------------------------


def compute_cp_rank() -> Values:
    """Estimated CP ranks (integers) of known-rank tensors and of a linear baseline, plus ALS/baseline floats.

    Called as ``razin2020_tc_reference.py`` / ``razin2020_tc_train.py`` call it
    (config/config.yaml's ``razin2020.cp_rank``: tol 1e-6, 1000 sweeps).
    """
    # Unit-norm rank-1 and rank-3 4×4×4 tensors and 12 observed entries, drawn
    # here rather than by tensor_completion.generate_tensor_data (see _matrix_instance).
    rng = np.random.default_rng(7)
    rank1, rank3 = (cr.cp_reconstruct([rng.standard_normal((4, r)) for _ in range(3)]) for r in (1, 3))
    rank1 = (rank1 / np.linalg.norm(rank1)).astype(np.float32)
    rank3 /= np.linalg.norm(rank3)
    observed = rng.permutation(rank1.size)[:12]
    linear = td.linear_baseline_tensor(rank1, observed)
    # 5 ALS sweeps of a rank-2 fit to the rank-3 tensor: never below tol and still
    # converging (a 6th sweep moves the MSE by 4e-2), so the MSE is a float of the
    # ALS arithmetic itself; perturbing the tensor by 1e-14 moves it by only 2e-14.
    _, als_mse, als_sweeps = cr.cp_als(rank3, 2, np.random.default_rng(8), 1e-6, 5)
    return {
        "rank_of_rank1_tensor": cr.estimate_cp_rank(rank1, 0, 1e-6, 1000),
        "rank_of_rank3_tensor": cr.estimate_cp_rank(rank3, 0, 1e-6, 1000),
        "rank_of_linear_baseline_n12": cr.estimate_cp_rank(linear, 0, 1e-6, 1000),
        "linear_baseline_error_n12": td.linear_baseline_error(rank1, observed),
        "als_rank2_mse_5_sweeps": als_mse,
        "als_rank2_sweeps": als_sweeps,
    }


# --------------------------------------------------------------------------
# Engines, tolerances and the comparison
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """How to recompute an engine's reference values and how closely they must agree.

    Floats must satisfy ``|new − ref| ≤ atol + rtol·|ref|``; integers and strings
    (iteration counts, ranks, statuses) must be equal.
    """

    compute: Callable[[], Values]
    rtol: float
    atol: float


# Tolerances: wide enough for a refactor that only reorders floating-point
# operations, narrow enough for a real change of numerics. "Rounding noise" below
# was measured on these very computations (float64 rerun of a float32 engine, a
# batch vs. its runs one by one, dense vs. sampled gradients, a 1-ulp change of the
# initialization); "a real change" is a 1 % larger learning rate (or, for SCS, an
# ε 1.5× larger), which also changes most iteration counts.
ENGINES: dict[str, Engine] = {
    # float64 arithmetic rounded once to float32 and numpy's bit-stable Generator
    # streams: a faithful refactor moves a value by at most an ulp of float32
    # (6e-8 relative), and any change of a draw moves it by O(1).
    "matrix_data": Engine(compute_matrix_data, rtol=1e-6, atol=1e-6),
    # float32 training: rounding noise ≤ 8e-7 relative (float64 rerun, batch vs.
    # solo runs, sampled vs. dense MovieLens gradients); a 1 % larger learning rate
    # moves every batch by ≥ 5e-3 relative somewhere (and shifts the stopping
    # iterations of the converged GD runs). rtol 1e-4 = ~100× the noise. atol only
    # for values that would be zero.
    "deep_factorization": Engine(compute_deep_factorization, rtol=1e-4, atol=1e-7),
    # SCS stops at eps_abs = eps_rel = 1e-6, so the solution is known to ~1e-5:
    # use_indirect, eps 1e-8 or even Clarabel move the objectives by ≤ 2e-6 relative
    # and entries / errors (~1e-3: the truth is recovered to within the ε-ball) by
    # ≤ 2e-5 absolute; ε 1.5× larger moves the objectives by 3.6e-4 relative and the
    # errors by 4e-4 absolute. Hence rtol 1e-4 with atol 5e-5 (a refactor of the
    # same SCS solve moves far less than a change of solver mode).
    "min_nuclear_norm": Engine(compute_min_nuclear_norm, rtol=1e-4, atol=5e-5),
    # The same SCS tolerances on a sensing instance: the two constraint forms
    # (|.| <= eps and the slack) differ by 4e-7 relative in the objective here.
    "min_nuclear_norm_sensing": Engine(compute_min_nuclear_norm_sensing, rtol=1e-4, atol=5e-5),
    # float32 kernel with an explicit order of operations (no BLAS, no FMA), so
    # bit-reproducible here; a float64 rerun moves the chosen runs by ≤ 4e-6
    # relative, a 1 % larger learning rate by ≥ 7e-5 (|P11|) to 1e-2 (losses).
    # atol 1e-7: the converged run's last loss (~1e-12) is rounding, not numerics.
    "two_by_two": Engine(compute_two_by_two, rtol=1e-4, atol=1e-7),
    # float32 torch: batched and solo runs agree bit for bit; a 1-ulp change of
    # the initialization moves the values by ≤ 5e-7; a 1 % larger learning rate
    # by ≥ 1.6e-2. rtol 1e-4 = ~200× the noise.
    "tensor_completion": Engine(compute_tensor_completion, rtol=1e-4, atol=1e-9),
    # Ranks and sweep counts are integers (exact). The ALS MSE and the baseline
    # error are float64: a 1e-14 perturbation of the input moves the MSE by 2e-14,
    # one more ALS sweep by 4e-2; 1e-8 lies far between.
    "cp_rank": Engine(compute_cp_rank, rtol=1e-8, atol=1e-12),
}


def test_convex_settings_are_the_configs() -> None:
    """The convex engines' reference runs with config/config.yaml's settings."""
    import yaml

    config = yaml.safe_load((TESTS.parent / "config" / "config.yaml").read_text())
    # convex.variants are instance-spread variants' own settings, not the figures' solves
    assert {k: v for k, v in config["convex"].items() if k != "variants"} == CONVEX_CONFIG


def load_reference() -> dict[str, dict]:
    """The stored reference: ``{engine: {"version": int, "values": {...}}}`` ({} if absent)."""
    if not REFERENCE.exists():
        return {}
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def compare(engine: str, values: Values, stored: Values) -> list[str]:
    """Differences between recomputed and stored values, one line each (empty: agree)."""
    spec = ENGINES[engine]
    problems = []
    for key in sorted(set(values) | set(stored)):
        if key not in stored or key not in values:
            problems.append(f"{key}: only in the {'recomputed' if key in values else 'stored'} values")
            continue
        new, ref = values[key], stored[key]
        if isinstance(ref, float) or isinstance(new, float):
            ok = isinstance(new, (int, float)) and isinstance(ref, (int, float)) and (
                math.isfinite(new) and math.isfinite(ref) and abs(new - ref) <= spec.atol + spec.rtol * abs(ref)
            )
        else:  # integers and strings: exact
            ok = type(new) is type(ref) and new == ref
        if not ok:
            problems.append(f"{key}: recomputed {new!r}, stored {ref!r}")
    return problems


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_every_engine_has_a_reference_and_vice_versa() -> None:
    """The engines of NUMERICS_VERSIONS, of this file and of the reference file agree."""
    reference = load_reference()
    assert set(ENGINES) == set(NUMERICS_VERSIONS), (
        f"engines without a computation here: {sorted(set(NUMERICS_VERSIONS) - set(ENGINES))}; "
        f"computations of unknown engines: {sorted(set(ENGINES) - set(NUMERICS_VERSIONS))}"
    )
    assert set(reference) == set(NUMERICS_VERSIONS), (
        f"engines without a reference: {sorted(set(NUMERICS_VERSIONS) - set(reference))}; "
        f"references of unknown engines: {sorted(set(reference) - set(NUMERICS_VERSIONS))}; "
        f"run `{RECORD_COMMAND}`"
    )


@pytest.mark.parametrize("engine", list(NUMERICS_VERSIONS))
def test_reference_output_matches_numerics_version(engine: str) -> None:
    """Recomputed output equals the reference recorded at the engine's current version."""
    if engine not in ENGINES:
        pytest.fail(f"{engine}: no computation in ENGINES of {Path(__file__).name}; add one", pytrace=False)
    reference = load_reference()
    if engine not in reference:
        pytest.fail(f"{engine}: no reference in {REFERENCE.name}; run `{RECORD_COMMAND}`", pytrace=False)
    stored = reference[engine]
    version = NUMERICS_VERSIONS[engine]
    if stored["version"] != version:
        pytest.fail(
            f"{engine}: numerics version is {version} but the reference was recorded at version "
            f"{stored['version']}; re-record it with `{RECORD_COMMAND}` and commit "
            f"{REFERENCE.relative_to(TESTS.parent)}",
            pytrace=False,
        )
    problems = compare(engine, ENGINES[engine].compute(), stored["values"])
    if problems:
        pytest.fail(
            f"{engine}: output changed while its numerics version stayed {version} "
            f"(rtol {ENGINES[engine].rtol:g}, atol {ENGINES[engine].atol:g}):\n  " + "\n  ".join(problems)
            + f"\nIf the change is intended, bump NUMERICS_VERSIONS[{engine!r}] in src/implicit_reg/numerics.py "
            f"(archived results of this engine become stale) and run `{RECORD_COMMAND}`.",
            pytrace=False,
        )


# --------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------


def record(force: bool = False) -> int:
    """Write the reference for the current versions; return a process exit code.

    Engines whose version is unchanged keep their stored values if the recomputed
    ones agree, and are not overwritten if they disagree (unless ``force``): a
    re-record must never launder an unversioned change of numbers.
    """
    missing = sorted(set(NUMERICS_VERSIONS) - set(ENGINES))
    if missing:
        print(f"no computation in {Path(__file__).name} for engines {missing}: add one to ENGINES first",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # as the pipeline's jobs (and conftest.py) do
    old = load_reference()
    new: dict[str, dict] = {}
    refused = []
    for engine, version in NUMERICS_VERSIONS.items():
        start = time.perf_counter()
        values = ENGINES[engine].compute()
        seconds = time.perf_counter() - start
        stored = old.get(engine)
        if stored is not None and stored["version"] == version:
            problems = compare(engine, values, stored["values"])
            if not problems:
                new[engine] = stored
                print(f"{engine}: version {version} unchanged, values agree ({seconds:.1f} s)")
                continue
            if not force:
                refused.append(engine)
                new[engine] = stored
                print(f"{engine}: version {version} unchanged but values differ ({seconds:.1f} s):\n  "
                      + "\n  ".join(problems))
                continue
        new[engine] = {"version": version, "values": values}
        print(f"{engine}: recorded at version {version} ({seconds:.1f} s)")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if refused:
        print(f"NOT re-recorded (bump their NUMERICS_VERSIONS, or --force if only this test's computation "
              f"changed): {', '.join(refused)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="write tests/data/numerics_reference.json")
    parser.add_argument("--force", action="store_true",
                        help="with --record: also overwrite engines whose version did not change")
    args = parser.parse_args()
    if not args.record:
        parser.error("nothing to do: pass --record (run the checks with pytest)")
    sys.exit(record(args.force))
