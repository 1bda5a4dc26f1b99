"""Shared helpers of the benchmark programs (bench/*.py).

The machine these run on is shared and noisy, so every figure that matters
is a *ratio* of two things measured in the same process, interleaved in
short chunks and repeated, with the median taken over the chunks. Times are
process CPU time (``time.process_time_ns``): with one thread it excludes
the time the process spends descheduled, which wall-clock time on a loaded
2-core machine does not.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]

# One thread everywhere, set before torch/numpy load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

torch.set_num_threads(1)

clock = time.process_time_ns  # CPU time of this (single-threaded) process, ns


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds of one call."""
    start = clock()
    fn()
    return (clock() - start) * 1e-9


def median(values) -> float:
    return float(statistics.median(values))


def quartiles(values) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return float(q[0]), float(q[2])


def entry(name: str, value: float, unit: str, ratio: float | None = None, **extra) -> dict:
    """One figure: name, value, unit, and the ratio where there is one."""
    out = {"name": name, "value": float(value), "unit": unit, "ratio": None if ratio is None else float(ratio)}
    out.update(extra)
    return out


def print_entries(entries: list[dict], title: str | None = None) -> None:
    if title:
        print(f"\n## {title}")
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        ratio = "" if e.get("ratio") is None else f"  ratio {e['ratio']:.3g}"
        print(f"{e['name']:<{width}}  {e['value']:>12.5g} {e['unit']:<6}{ratio}", flush=True)


def write_json(entries: list[dict], path: str | Path) -> None:
    Path(path).write_text(json.dumps(entries, indent=1) + "\n")


def load_config(path: Path | None = None) -> dict:
    """A preset (default ``config/config.yaml``), validated with defaults filled (both schemas, as the Snakefile does)."""
    import yaml

    return validated(yaml.safe_load((path or ROOT / "config" / "config.yaml").read_text()))


def validated(config: dict) -> dict:
    """``config`` validated in place, with defaults filled (the razin2020 section by its own schema)."""
    from implicit_reg.pipeline.config import load_schema, validate_config

    schemas = ROOT / "workflow" / "schemas"
    validate_config(config, load_schema(schemas / "config.schema.yaml"))
    validate_config(config["razin2020"], load_schema(schemas / "razin2020.schema.yaml"), "razin2020")
    return config


def load_module_from(path: str | Path, name: str):
    """Import a module from a file (e.g. an older deep_factorization.py) under its own name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Lockstep: several workloads in one process, taking turns in short windows.
# ---------------------------------------------------------------------------
import threading  # noqa: E402


class _Stop(Exception):
    """Raised inside a participant when it has run all its windows."""


class Lockstep:
    """Run several workloads in threads that take turns, ``window`` units each.

    Only one participant runs at a time (the others wait on a condition), so
    they share the machine's state of the moment, window by window, as
    interleaved chunks would. Each window's cost is the participant's own
    thread CPU time (``time.thread_time_ns``) divided by the units in it. A
    round gives one window of every participant; ratios are taken within a
    round, then the median over rounds. The first ``warmup`` rounds are
    dropped.

    A participant is a function that does its work and calls ``tick(name)``
    once per unit (an engine calls it from a hook on its per-iteration
    ``forward``, see :meth:`hook_forward`); it is stopped by an exception
    raised from ``tick`` after its last window.
    """

    def __init__(self, rounds: int, warmup: int = 1) -> None:
        self.rounds, self.warmup = rounds, warmup
        self.participants: dict[str, tuple[Callable[[], object], int]] = {}
        self.times: dict[str, list[float]] = {}
        self._cond = threading.Condition()
        self._turn: str | None = None
        self._threads: dict[int, str] = {}
        self._count: dict[str, int] = {}
        self._start: dict[str, int | None] = {}
        self._finished: set[str] = set()
        self.errors: dict[str, BaseException] = {}

    def add(self, name: str, work: Callable[[], object], window: int) -> None:
        self.participants[name] = (work, window)
        self.times[name] = []

    def hook_forward(self, module) -> Callable[[], None]:
        """Make ``module.forward`` tick the calling participant; returns the undo function."""
        original = module.forward

        def hooked(*args, **kwargs):
            self.tick()
            return original(*args, **kwargs)

        module.forward = hooked

        def undo() -> None:
            module.forward = original

        return undo

    def tick(self, name: str | None = None) -> None:
        now = time.thread_time_ns()
        name = name or self._threads[threading.get_ident()]
        if self._start[name] is None:  # first unit: the window starts here
            self._start[name] = now
            return
        self._count[name] += 1
        window = self.participants[name][1]
        if self._count[name] % window:
            return
        done = self._count[name] // window
        if done > self.warmup:
            self.times[name].append((now - self._start[name]) * 1e-9 / window)
        if done >= self.rounds + self.warmup:
            raise _Stop
        self._pass(name)
        self._start[name] = time.thread_time_ns()

    def _next(self, name: str) -> str | None:
        """The participant after ``name`` in round-robin order that has not finished."""
        order = list(self.participants)
        i = order.index(name)
        for k in range(1, len(order) + 1):
            cand = order[(i + k) % len(order)]
            if cand not in self._finished:
                return cand
        return None

    def _pass(self, name: str) -> None:
        with self._cond:
            self._turn = self._next(name)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._turn == name)

    def _body(self, name: str) -> None:
        self._threads[threading.get_ident()] = name
        with self._cond:
            self._cond.wait_for(lambda: self._turn == name)
        try:
            self.participants[name][0]()
            raise RuntimeError(f"participant {name} finished before its last window")
        except _Stop:
            pass
        except BaseException as err:  # noqa: BLE001 - reported by run()
            self.errors[name] = err
        finally:
            with self._cond:
                self._finished.add(name)
                self._turn = self._next(name)
                self._cond.notify_all()

    def run(self) -> dict[str, list[float]]:
        """Run every participant to its last window; per-window seconds per unit."""
        for name in self.participants:
            self._count[name], self._start[name] = 0, None
        threads = [threading.Thread(target=self._body, args=(n,), daemon=True) for n in self.participants]
        for th in threads:
            th.start()
        with self._cond:
            self._turn = next(iter(self.participants))
            self._cond.notify_all()
        for th in threads:
            th.join()
        if self.errors:
            name, err = next(iter(self.errors.items()))
            raise RuntimeError(f"benchmark participant {name!r} failed") from err
        return self.times


def loop_participant(lock: Lockstep, name: str, fn: Callable[[], object]) -> Callable[[], None]:
    """A participant that calls ``fn`` forever, one unit per call."""

    def work() -> None:
        while True:
            fn()
            lock.tick(name)

    return work


def paired(times: dict[str, list[float]], num: str, den: str, scale: float = 1.0) -> list[float]:
    """Per-round ratios scale·times[num]/times[den]."""
    return [scale * a / b for a, b in zip(times[num], times[den])]


def stepping(lock: Lockstep, name: str, trainer):
    """A participant that ticks once per engine step (the step size is computed once per step)."""
    original = trainer._step_size

    def hooked(grads, step):
        lock.tick(name)
        return original(grads, step)

    trainer._step_size = hooked
    return trainer.run


class _StepsDone(Exception):
    pass


def run_engine_steps(trainer, steps: int, on_start: Callable[[], None]) -> None:
    """Run a ``BatchTrainer`` for ``steps`` steps after its first, then stop it.

    ``on_start`` is called at the end of step 0 (setup and the iteration-0 log
    excluded from whatever it starts: a clock, a profiler). Steps are counted at
    ``_step_size``, which every gradient path calls once per step.
    """
    original = trainer._step_size
    count = 0

    def hooked(grads, step):
        nonlocal count
        count += 1
        if count == 1:
            on_start()
        if count == steps + 1:
            raise _StepsDone
        return original(grads, step)

    trainer._step_size = hooked
    try:
        trainer.run()
    except _StepsDone:
        pass
    finally:
        trainer._step_size = original
