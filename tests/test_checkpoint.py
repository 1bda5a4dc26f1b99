"""implicit_reg.core.checkpoint: atomic, fingerprinted checkpoints; foreign or corrupt ones are not resumed.

The trainer-level tests kill a deep-factorization batch mid-run, then resume it with a
changed learning rate, changed seeds, or a damaged file: each must end bit-identical to an
uninterrupted run of the *new* batch, with a warning naming the checkpoint.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019.initialization import initial_factors
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import BatchResult, BatchTrainer
from implicit_reg.core import checkpoint as ckpt


def test_fingerprint_ignores_key_order_and_sees_every_value() -> None:
    a = ckpt.fingerprint({"lr": 0.01, "seeds": [1, 2], "data": {"m.npz": "ab"}})
    assert a == ckpt.fingerprint({"data": {"m.npz": "ab"}, "seeds": [1, 2], "lr": 0.01})
    assert a != ckpt.fingerprint({"lr": 0.02, "seeds": [1, 2], "data": {"m.npz": "ab"}})
    assert a != ckpt.fingerprint({"lr": 0.01, "seeds": [1, 3], "data": {"m.npz": "ab"}})
    assert a != ckpt.fingerprint({"lr": 0.01, "seeds": [1, 2], "data": {"m.npz": "ac"}})


def test_file_digests_follow_the_bytes_not_the_directory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.npz").write_bytes(b"123")
    (tmp_path / "b" / "m.npz").write_bytes(b"123")
    assert ckpt.file_digests([tmp_path / "a" / "m.npz"]) == ckpt.file_digests([tmp_path / "b" / "m.npz"])
    (tmp_path / "b" / "m.npz").write_bytes(b"124")
    assert ckpt.file_digests([tmp_path / "a" / "m.npz"]) != ckpt.file_digests([tmp_path / "b" / "m.npz"])


def test_array_digest_sees_dtype_shape_and_bits() -> None:
    x = np.arange(6, dtype=np.float32)
    assert ckpt.array_digest([x]) == ckpt.array_digest([torch.from_numpy(x.copy())])
    assert ckpt.array_digest([x]) != ckpt.array_digest([x.reshape(2, 3)])
    assert ckpt.array_digest([x]) != ckpt.array_digest([x.astype(np.float64)])
    y = x.copy()
    y[3] = np.nextafter(y[3], np.float32(10))
    assert ckpt.array_digest([x]) != ckpt.array_digest([y])


def test_round_trip_keeps_types_and_bits(tmp_path: Path) -> None:
    payload = {
        "state": {"w": np.linspace(0, 1, 7).reshape(7, 1), "status": np.array(["running", "done"]),
                  "mask": np.array([True, False]), "n": np.int64(3)},
        "factors": [torch.randn(2, 3, dtype=torch.float32), torch.arange(4)],
        "wall_seconds": 1.5,
        "names": {"0": "converged"},
    }
    path = tmp_path / "job.checkpoint.pt"
    ckpt.save_checkpoint(path, payload, "f" * 64)
    got = ckpt.load_checkpoint(path, "f" * 64)
    assert got is not None
    for key in ("w", "status", "mask"):
        assert isinstance(got["state"][key], np.ndarray)
        assert got["state"][key].dtype == payload["state"][key].dtype
        np.testing.assert_array_equal(got["state"][key], payload["state"][key])
    assert got["state"]["n"] == 3
    assert torch.equal(got["factors"][0], payload["factors"][0]) and torch.equal(got["factors"][1], torch.arange(4))
    assert got["wall_seconds"] == 1.5 and got["names"] == {"0": "converged"}
    assert not path.with_name(path.name + ".tmp").exists()  # written atomically through a temporary file


def test_absent_or_empty_checkpoint_starts_afresh_silently(tmp_path: Path, caplog) -> None:
    path = tmp_path / "job.checkpoint.pt"
    assert ckpt.load_checkpoint(path, "a") is None
    path.touch()  # Snakemake creates log files empty
    with caplog.at_level(logging.WARNING):
        assert ckpt.load_checkpoint(path, "a") is None
    assert not caplog.records and path.exists()


def test_foreign_checkpoint_warns_naming_the_file(tmp_path: Path, caplog) -> None:
    path = tmp_path / "job.checkpoint.pt"
    ckpt.save_checkpoint(path, {"x": torch.zeros(1)}, ckpt.fingerprint({"seed": 7}))
    with caplog.at_level(logging.WARNING, logger="implicit_reg.core.checkpoint"):
        assert ckpt.load_checkpoint(path, ckpt.fingerprint({"seed": 8})) is None
    assert str(path) in caplog.text and "another configuration" in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign_pickle", "plain_pickle", "unsafe_global"])
def test_corrupt_checkpoint_is_moved_aside_with_a_warning(tmp_path: Path, caplog, damage: str) -> None:
    path = tmp_path / "job.checkpoint.pt"
    ckpt.save_checkpoint(path, {"x": torch.arange(1000)}, "k")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04not a checkpoint at all")
    elif damage == "plain_pickle":  # torch's refusal of a legacy pickle advises weights_only=False
        path.write_bytes(pickle.dumps({"fingerprint": "k", "payload": {}}))
    elif damage == "unsafe_global":  # a global the safe loader refuses (torch advises weights_only=False)
        torch.save({"fingerprint": "k", "payload": {"x": np.zeros(3)}}, path)
    else:
        torch.save({"something": torch.ones(2)}, path)  # readable, but no fingerprint
    original = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="implicit_reg.core.checkpoint"):
        assert ckpt.load_checkpoint(path, "k") is None
    assert str(path) in caplog.text and "unreadable" in caplog.text
    assert "weights_only" not in caplog.text and "trusted source" not in caplog.text  # never torch's unsafe advice
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert not path.exists()
    assert ckpt.corrupt_path(path).read_bytes() == original  # kept for inspection


def test_clear_checkpoint_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.checkpoint.pt"
    ckpt.save_checkpoint(path, {"x": torch.zeros(1)}, "k")
    ckpt.clear_checkpoint(path)
    ckpt.clear_checkpoint(path)  # absent: no error
    assert not path.exists()


# ------------------------------------------------------------ through the trainer


def _problem():
    rng = np.random.default_rng(0)
    gt = matrix_data.low_rank_ground_truth(10, 10, 2, rng)
    obs = matrix_data.completion_arrays(gt, 60, rng)
    return build_problem("completion", obs, gt, "cpu", torch.float32)


SCHEDULE = Schedule(max_iters=400, log_every=50, sync_every=25, train_loss_tol=1e-30, checkpoint_seconds=1e-9)


def _init(problem, seeds):
    return [initial_factors(problem.shape, 3, "gaussian", 1e-2, np.random.default_rng(s)) for s in seeds]


def _killed_run(problem, path: Path, seeds=(0, 1), lrs=(1e-2, 5e-3), fingerprint: str = "") -> None:
    trainer = BatchTrainer(problem, _init(problem, seeds), list(lrs), SCHEDULE, checkpoint_path=path,
                           fingerprint=fingerprint)
    original = trainer._step_size

    class Killed(Exception):
        pass

    def step_size(grads, step):
        if step > 210:
            raise Killed
        return original(grads, step)

    trainer._step_size = step_size
    with pytest.raises(Killed):
        trainer.run()
    assert path.stat().st_size > 0


def _assert_identical(a: BatchResult, b: BatchResult) -> None:
    np.testing.assert_array_equal(a.final_products, b.final_products)
    assert a.status == b.status
    for key in ("final_train_loss", "test_mse", "recon_error", "nuclear_norm", "iterations"):
        np.testing.assert_array_equal(a.final[key], b.final[key], err_msg=key)
    for key, values in a.trajectories.items():
        np.testing.assert_array_equal(b.trajectories[key], values, err_msg=key)


@pytest.mark.parametrize("change", ["lr", "seeds", "caller"])
def test_changed_batch_ignores_the_old_checkpoint(tmp_path: Path, caplog, change: str) -> None:
    """The issue's probe: kill, change a seed (or lr, or the data), rerun: a fresh run, not a resumed one."""
    problem = _problem()
    path = tmp_path / "batch.checkpoint.pt"
    _killed_run(problem, path)
    new = {"seeds": (0, 1), "lrs": (1e-2, 5e-3), "fingerprint": ""}
    new.update({"lr": {"lrs": (1e-2, 4e-3)}, "seeds": {"seeds": (0, 2)},
                "caller": {"fingerprint": "other data sha256"}}[change])
    fresh = BatchTrainer(problem, _init(problem, new["seeds"]), list(new["lrs"]), SCHEDULE,
                         fingerprint=new["fingerprint"]).run()
    with caplog.at_level(logging.INFO):
        rerun = BatchTrainer(problem, _init(problem, new["seeds"]), list(new["lrs"]), SCHEDULE,
                             checkpoint_path=path, fingerprint=new["fingerprint"]).run()
    assert str(path) in caplog.text and "another configuration" in caplog.text
    assert "resumed from checkpoint" not in caplog.text
    _assert_identical(fresh, rerun)


def test_same_batch_resumes_exactly(tmp_path: Path, caplog) -> None:
    problem = _problem()
    path = tmp_path / "batch.checkpoint.pt"
    _killed_run(problem, path, fingerprint="data")
    whole = BatchTrainer(problem, _init(problem, (0, 1)), [1e-2, 5e-3], SCHEDULE).run()
    with caplog.at_level(logging.INFO):
        resumed = BatchTrainer(problem, _init(problem, (0, 1)), [1e-2, 5e-3], SCHEDULE, checkpoint_path=path,
                               fingerprint="data").run()
    assert "resumed from checkpoint" in caplog.text
    _assert_identical(whole, resumed)
    # The killed attempt's time is carried over, for the archive's job times.
    assert whole.resumed_seconds == 0.0 and 0.0 < resumed.resumed_seconds <= resumed.batch_wall_seconds
    assert whole.resumed_cpu_seconds == 0.0 and resumed.resumed_cpu_seconds > 0.0


def test_checkpoint_interval_does_not_invalidate_a_checkpoint() -> None:
    problem = _problem()
    init = _init(problem, (0, 1))
    a = BatchTrainer(problem, init, [1e-2, 5e-3], SCHEDULE)
    b = BatchTrainer(problem, init, [1e-2, 5e-3], Schedule(**{**vars(SCHEDULE), "checkpoint_seconds": 60}))
    assert a.fingerprint == b.fingerprint


def test_corrupt_checkpoint_is_moved_aside_and_the_batch_runs(tmp_path: Path, caplog) -> None:
    problem = _problem()
    path = tmp_path / "batch.checkpoint.pt"
    _killed_run(problem, path)
    path.write_bytes(path.read_bytes()[:100])
    whole = BatchTrainer(problem, _init(problem, (0, 1)), [1e-2, 5e-3], SCHEDULE).run()
    with caplog.at_level(logging.INFO):
        rerun = BatchTrainer(problem, _init(problem, (0, 1)), [1e-2, 5e-3], SCHEDULE, checkpoint_path=path).run()
    assert str(path) in caplog.text and "unreadable" in caplog.text
    assert ckpt.corrupt_path(path).exists()
    _assert_identical(whole, rerun)


# ------------------------------------------------------------ the Razin & Cohen engines, same module


def test_two_by_two_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    from implicit_reg.razin2020 import two_by_two as tt
    from implicit_reg.razin2020 import two_by_two_problem as tp

    problem = tp.make_completion_problem({(0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0})
    configs = [tp.DMFRunConfig(2, 6e-3, 1e-5, "gaussian", 1, 11), tp.DMFRunConfig(3, 6e-3, 1e-3, "balanced", 1, 12)]
    straight = tt.init_batch([problem, problem], configs, max_iters=20_000)
    tt.run_batch(straight)
    part = tt.init_batch([problem, problem], configs, max_iters=20_000)
    tt.advance(part, 3_333)
    path = tmp_path / "dmf.checkpoint.pt"
    ckpt.save_checkpoint(path, {"state": tt.get_state(part), "wall_seconds": 1.25}, "spec")
    loaded = ckpt.load_checkpoint(path, "spec")
    assert loaded["wall_seconds"] == 1.25
    resumed = tt.restore_state(loaded["state"])
    tt.run_batch(resumed)
    a, b = tt.get_state(straight), tt.get_state(resumed)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_tensor_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    from implicit_reg.razin2020 import tensor_completion as tc
    from implicit_reg.razin2020 import tensor_data as td

    data = td.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    observed = td.observed_indices(data, 40)
    straight = tc.CPCompletionBatch(data.target, observed, [1e-2, 1e-3], [0, 1], device="cpu").run()
    part = tc.CPCompletionBatch(data.target, observed, [1e-2, 1e-3], [0, 1], device="cpu")
    part.advance(237)
    path = tmp_path / "tc.checkpoint.pt"
    ckpt.save_checkpoint(path, {"state": part.get_state(), "wall_seconds": 0.5}, "spec")
    resumed = tc.CPCompletionBatch.from_state(ckpt.load_checkpoint(path, "spec")["state"], device="cpu")
    resumed.run()
    a, b = straight.get_state(), resumed.get_state()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
