"""From the configuration to the jobs of the pipeline (no Snakemake inside).

A figure's config lists *sweeps* (grids over task, rank, number of
observations, depth, initialization, learning rate and seeds). The plan
expands them into runs, deduplicates runs that several figures share, and
groups the runs that share one data set, depth and schedule into *batches*:
one batch is one training job that trains its runs as one stacked tensor.
Sensing batches hold every depth (see :data:`SHARED_OPERATOR_TASKS`).

Errors in the config that the JSON schema cannot express (more observations
than entries, say) raise :class:`ConfigError` naming the offending key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from implicit_reg.seeding import derive_seed

TASKS = ("completion", "sensing", "movielens")
#: Tasks whose runs of all depths share one batch: every run's step is dominated by the
#: products with the measurement matrix, which the batch computes once for all its runs
#: (depth 0 in the batch key = per-run depths). Completion and MovieLens stay per depth.
SHARED_OPERATOR_TASKS = ("sensing",)


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Dataset:
    """One set of observations (and its ground truth)."""

    task: str
    rank: int  # 0 for MovieLens
    n_obs: int
    shape: tuple[int, int]
    #: The size is part of the name only when it differs from the config's
    #: ``arora2019.matrix_size``, so the usual names stay short and stable.
    default_size: int = 0

    @property
    def name(self) -> str:
        if self.task == "movielens":
            return f"movielens-m{self.n_obs}"
        return f"{self.ground_truth_name}-m{self.n_obs}"

    @property
    def ground_truth_name(self) -> str:
        if self.task == "movielens":
            return "movielens"
        size = "" if self.shape[0] == self.default_size else f"-n{self.shape[0]}"
        return f"{self.task}{size}-r{self.rank}"


def parse_ground_truth_name(name: str, default_size: int) -> tuple[str, int, int]:
    """(task, size, rank) of a ground-truth name such as ``sensing-n50-r3``."""
    match = re.fullmatch(r"(completion|sensing)(?:-n(\d+))?-r(\d+)", name)
    if match is None:
        raise ValueError(f"not a ground-truth name: {name!r}")
    task, size, rank = match.groups()
    return task, int(size) if size else default_size, int(rank)


@dataclass(frozen=True)
class ScheduleSpec:
    """Training schedule shared by all runs of a batch."""

    optimizer: str
    max_iters: int
    log_every: int
    train_loss_tol: float
    n_singular_values: int
    log_alignment: bool


@dataclass(frozen=True)
class Run:
    """One gradient-descent run."""

    dataset: Dataset
    depth: int
    init: str
    init_scale: float
    lr: float
    seed: int
    schedule: ScheduleSpec
    base_seed: int

    @property
    def init_seed(self) -> int:
        # lr is left out on purpose: runs differing only in lr start from the
        # same factors, so their comparison is not blurred by the draw.
        return derive_seed(
            self.base_seed, "init", self.dataset.name, self.depth, self.init,
            self.init_scale, self.seed,
        )

    @property
    def run_id(self) -> str:
        key = (self.dataset.name, self.depth, self.init, self.init_scale, self.lr,
               self.seed, asdict(self.schedule), self.base_seed)
        return _short_hash(key)

    @property
    def batch_key(self) -> tuple:
        depth = 0 if self.dataset.task in SHARED_OPERATOR_TASKS else self.depth
        return (self.dataset, depth, self.schedule)


@dataclass
class Batch:
    """Runs trained together in one job."""

    dataset: Dataset
    #: 0: the runs' own depths (a shared-operator batch, ordered by depth).
    depth: int
    schedule: ScheduleSpec
    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        digest = _short_hash((asdict(self.schedule),))[:6]
        depth = f"-d{self.depth}" if self.depth else ""
        return f"{self.dataset.name}{depth}-{self.schedule.optimizer}-{digest}"

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description passed to the training job."""
        return {
            "batch": self.name,
            "task": self.dataset.task,
            "rank": self.dataset.rank,
            "n_obs": self.dataset.n_obs,
            "shape": list(self.dataset.shape),
            "depth": self.depth,
            "schedule": asdict(self.schedule),
            "runs": [
                {
                    "run_id": r.run_id,
                    "init": r.init,
                    "init_scale": r.init_scale,
                    "lr": r.lr,
                    "seed": r.seed,
                    "init_seed": r.init_seed,
                    "depth": r.depth,
                }
                for r in self.runs
            ],
        }


@dataclass
class FigurePlan:
    """What one figure needs."""

    name: str
    paper: str
    notebook: str
    notebook_params: dict[str, Any]
    run_ids: list[str]
    batches: list[str]
    convex_datasets: list[Dataset]
    ground_truth_datasets: list[Dataset]


@dataclass
class Plan:
    """All datasets, batches, convex solves and figures of a configuration."""

    datasets: dict[str, Dataset]
    batches: dict[str, Batch]
    figures: dict[str, FigurePlan]

    def convex_datasets(self) -> dict[str, Dataset]:
        out: dict[str, Dataset] = {}
        for fig in self.figures.values():
            for d in fig.convex_datasets:
                out[d.name] = d
        return out


def _short_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def build_plan(config: dict[str, Any]) -> Plan:
    """Expand the (schema-validated, defaults-filled) config into a :class:`Plan`."""
    section = config["arora2019"]
    size = int(section["matrix_size"])
    base_seed = int(config["seed"])
    datasets: dict[str, Dataset] = {}
    batches: dict[str, Batch] = {}
    figures: dict[str, FigurePlan] = {}
    runs_by_id: dict[str, Run] = {}
    for fig_name, fig in section["figures"].items():
        where = f"arora2019.figures.{fig_name}"
        fig_runs: list[Run] = []
        for i, sweep in enumerate(fig["sweeps"]):
            fig_runs.extend(
                _expand_sweep(sweep, f"{where}.sweeps[{i}]", size, config, base_seed)
            )
        fig_datasets: dict[str, Dataset] = {}
        batch_names: list[str] = []
        for run in fig_runs:
            datasets.setdefault(run.dataset.name, run.dataset)
            fig_datasets.setdefault(run.dataset.name, run.dataset)
            if run.run_id in runs_by_id:
                continue
            runs_by_id[run.run_id] = run
        for run in fig_runs:
            batch = _batch_for(batches, run)
            if batch.name not in batch_names:
                batch_names.append(batch.name)
        synthetic = [d for d in fig_datasets.values() if d.task != "movielens"]
        figures[fig_name] = FigurePlan(
            name=fig_name,
            paper="arora2019",
            notebook=fig["notebook"],
            notebook_params=dict(fig.get("notebook_params", {})),
            run_ids=sorted({r.run_id for r in fig_runs}),
            batches=batch_names,
            convex_datasets=synthetic if fig.get("min_nuclear_norm", False) else [],
            ground_truth_datasets=synthetic if fig.get("ground_truth", False) else [],
        )
    for batch in batches.values():
        batch.runs.sort(key=lambda r: (r.depth, r.init, -r.init_scale, -r.lr, r.seed))
    return Plan(datasets=datasets, batches=batches, figures=figures)


def _batch_for(batches: dict[str, Batch], run: Run) -> Batch:
    probe = Batch(*run.batch_key)
    batch = batches.setdefault(probe.name, probe)
    if all(r.run_id != run.run_id for r in batch.runs):
        batch.runs.append(run)
    return batch


def _expand_sweep(
    sweep: dict[str, Any], where: str, size: int, config: dict[str, Any], base_seed: int
) -> Iterable[Run]:
    task = sweep["task"]
    training = config["arora2019"]["training"][sweep["optimizer"]]
    schedule = ScheduleSpec(
        optimizer=sweep["optimizer"],
        max_iters=int(sweep.get("max_iters", training["max_iters"])),
        log_every=int(sweep.get("log_every", training["log_every"])),
        train_loss_tol=float(sweep.get("train_loss_tol", training["train_loss_tol"])),
        n_singular_values=int(sweep.get("n_singular_values", 10)),
        log_alignment=bool(sweep.get("log_alignment", False)),
    )
    if task == "movielens":
        ml = config["data"]["movielens"]
        shape = tuple(ml["shape"])
        ranks = [0]
        n_obs_list = [int(ml["n_train"])]
    else:
        shape = (int(sweep.get("matrix_size", size)),) * 2
        ranks = [int(r) for r in _as_list(sweep["rank"])]
        n_obs_list = [int(m) for m in _as_list(sweep["n_obs"])]
    for m in n_obs_list:
        if task == "completion" and m > shape[0] * shape[1]:
            raise ConfigError(
                f"{where}.n_obs: {m} observations requested but a {shape[0]}×{shape[1]} "
                f"matrix has only {shape[0] * shape[1]} entries"
            )
    for r in ranks:
        if task != "movielens" and r > min(shape):
            raise ConfigError(f"{where}.rank: rank {r} exceeds the matrix size {min(shape)}")
    seeds = range(int(sweep["seeds"]))
    for rank, m, depth, init_scale, lr, seed in itertools.product(
        ranks, n_obs_list, _as_list(sweep["depth"]), _as_list(sweep["init_scale"]),
        _as_list(sweep["lr"]), seeds,
    ):
        yield Run(
            dataset=Dataset(task, rank, m, shape, size),
            depth=int(depth),
            init=sweep["init"],
            init_scale=float(init_scale),
            lr=float(lr),
            seed=int(seed),
            schedule=schedule,
            base_seed=base_seed,
        )
