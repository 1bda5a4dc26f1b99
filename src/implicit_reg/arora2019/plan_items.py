"""What a run and a data set of Arora et al. are, and what determines their numbers.

:class:`Dataset` (a ground truth and its observations, or MovieLens), :class:`Run` (one
gradient-descent run on a data set), :class:`ScheduleSpec` and :class:`Batch` (runs trained
in one job); the seed keys of their
random draws; and the payloads hashed into provenance keys: :func:`data_identity`,
:func:`run_payload` and :func:`convex_payload` (with :func:`convex_section`, a
solve's convex settings). :mod:`implicit_reg.arora2019.plan` groups runs into jobs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from implicit_reg.results import archive
from implicit_reg.arora2019 import convex
from implicit_reg.core.seeding import derive_seed

TASKS = ("completion", "sensing", "movielens")
#: Tasks whose runs of all depths share one batch: every run's step is dominated by the
#: products with the measurement matrix, which the batch computes once for all its runs
#: (depth 0 in the batch key = per-run depths). Completion and MovieLens stay per depth.
SHARED_OPERATOR_TASKS = ("sensing",)


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


#: How observed entries can be drawn, and the suffix each gives the observation file.
SAMPLING_SUFFIXES = {"without_replacement": "", "with_replacement": "-wr", "fewer_distinct": "-fd"}


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
    #: 0 is the figure's own instance; 1..K are further seeded draws of ground truth,
    #: observations and initializations (the instance spread, config ``instances``).
    instance: int = 0
    #: how observed entries are drawn: ``without_replacement`` (spec §1.2),
    #: ``with_replacement`` (duplicates kept and weighted, as a sampler with replacement)
    #: or ``fewer_distinct`` (as many distinct entries as m draws with replacement give).
    sampling: str = "without_replacement"
    #: a named ``convex.variants`` entry: the minimum-nuclear-norm solve of these data
    #: with that entry's solver settings (the data, and so every run's key, unchanged)
    convex_variant: str = ""

    @property
    def name(self) -> str:
        if self.task == "movielens":
            return f"movielens-m{self.n_obs}"
        variant = f"-{self.convex_variant}" if self.convex_variant else ""
        return f"{self.ground_truth_name}-m{self.observations_suffix}{variant}"

    @property
    def variant(self) -> str:
        """Its name in instance-spread tables: ``protocol`` for the documented protocol."""
        if self.convex_variant:
            return self.convex_variant
        return "protocol" if self.sampling == "without_replacement" else self.sampling

    @property
    def observations_suffix(self) -> str:
        """``<n_obs>``, ``<n_obs>-wr`` (with replacement) or ``<n_obs>-fd`` (fewer distinct)."""
        return str(self.n_obs) + SAMPLING_SUFFIXES[self.sampling]

    @property
    def ground_truth_name(self) -> str:
        if self.task == "movielens":
            return "movielens"
        size = "" if self.shape[0] == self.default_size else f"-n{self.shape[0]}"
        instance = f"-i{self.instance}" if self.instance else ""
        return f"{self.task}{size}-r{self.rank}{instance}"

    def record(self) -> dict[str, Any]:
        """JSON form passed to data, convex and table jobs."""
        return {"name": self.name, "task": self.task, "rank": self.rank, "n_obs": self.n_obs,
                "size": self.shape[0], "ground_truth_name": self.ground_truth_name,
                "instance": self.instance, "sampling": self.sampling,
                "convex_variant": self.convex_variant}


def ground_truth_seed_keys(record: dict[str, Any]) -> tuple:
    """What a ground truth's random draw is seeded by, from a :meth:`Dataset.record`.

    Instance 0 keeps the keys it always had, so its data do not change.
    """
    keys: tuple = ("ground_truth", record["task"], record["rank"], record["size"])
    return keys + (("instance", record["instance"]),) if record["instance"] else keys


def observations_seed_keys(record: dict[str, Any]) -> tuple:
    """What the observations' random draw is seeded by (defaults keep the original keys)."""
    keys: tuple = ("observations", record["task"], record["rank"], record["size"], record["n_obs"])
    if record["instance"]:
        keys += (("instance", record["instance"]),)
    if record["sampling"] != "without_replacement":
        keys += (("sampling", record["sampling"]),)
    return keys


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

    @property
    def order(self) -> tuple:
        """Where the run stands in its group: by depth, init, decreasing scale and learning rate, seed."""
        return (self.depth, self.init, -self.init_scale, -self.lr, self.seed, self.run_id)


def _short_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_identity(dataset: Dataset, config: dict[str, Any]) -> dict[str, Any]:
    """What determines a data set's values (part of every provenance key that reads it).

    Synthetic data sets are drawn by the pipeline: their identity is what seeds and
    sizes the draw (spec §1.1–1.2). MovieLens is read from a file: its identity is the
    declared sha256 of u.data (``file_sha256``, checked by the job that reads the file,
    so no file is needed to plan), or for the GroupLens download the archive's checksum,
    and the split settings. Where the file comes from is not part of it.
    """
    if dataset.task == "movielens":
        ml = dict(config["data"]["movielens"])
        path = ml.pop("path", None)
        source = ml.pop("source", "authors")
        for where in ("url", "authors_url", "authors_sha256"):
            ml.pop(where, None)
        ml.pop("alignment_total", None)  # a logging scale, in the run's payload
        declared = ml.pop("file_sha256", None)
        if path or source == "authors":
            ml["file_sha256"] = declared
        return {"task": "movielens", "movielens": ml, "seed": int(config["seed"]),
                "numerics": archive.numerics("matrix_data")}
    identity = {"task": dataset.task, "shape": list(dataset.shape), "rank": dataset.rank,
                "n_obs": dataset.n_obs, "seed": int(config["seed"]),
                "numerics": archive.numerics("matrix_data")}
    # Only non-default draws carry these, so the figures' own keys never change.
    if dataset.instance:
        identity["instance"] = dataset.instance
    if dataset.sampling != "without_replacement":
        identity["sampling"] = dataset.sampling
    return identity


def run_payload(run: Run, config: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines a gradient-descent run's numbers (its provenance key's payload).

    The batch a run trains in, the device, the gradient path (dense or sampled), sync and
    checkpoint intervals change its numbers by float32 rounding at most, so they are left out.
    """
    engine = {"dtype": config["dtype"], "divergence_loss": float(config["engine"]["divergence_loss"])}
    if run.schedule.optimizer == "grouprmsprop":
        engine["group_rmsprop"] = dict(config["arora2019"]["group_rmsprop"])
    if run.dataset.task == "movielens" and run.schedule.log_alignment:
        engine["alignment_total"] = int(config["data"]["movielens"]["alignment_total"])
    return {
        "kind": "arora2019.deep_factorization",
        "data": data,
        "run": {"depth": run.depth, "init": run.init, "init_scale": run.init_scale, "lr": run.lr,
                "seed": run.seed, "init_seed": run.init_seed, "schedule": asdict(run.schedule)},
        "engine": engine,
        "numerics": archive.numerics("deep_factorization"),
    }


def convex_section(dataset: Dataset, config: dict[str, Any]) -> dict[str, Any]:
    """The ``convex`` config of a data set's solve: its ``convex_variant`` applied over the section.

    A variant's ``solver_options`` replace the section's (a solver's accuracy settings are
    one set); its ``epsilon``, if given, replaces ε.
    """
    section = {k: v for k, v in config["convex"].items() if k != "variants"}
    if dataset.convex_variant:
        variant = config["convex"].get("variants", {}).get(dataset.convex_variant)
        if variant is None:
            raise ConfigError(f"convex.variants: no variant named {dataset.convex_variant!r}")
        section.update({k: v for k, v in variant.items() if k != "description"})
    return section


def convex_payload(dataset: Dataset, config: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines a minimum-nuclear-norm solution (sensing and completion solve different programs)."""
    return {"kind": "arora2019.min_nuclear_norm", "data": data,
            "convex": convex.task_settings(dataset.task, convex_section(dataset, config)),
            "numerics": archive.numerics(convex.numerics_engine(dataset.task))}


@dataclass
class Batch:
    """Runs trained together in one job."""

    dataset: Dataset
    #: 0: the runs' own depths (a shared-operator batch, ordered by depth).
    depth: int
    schedule: ScheduleSpec
    runs: list[Run] = field(default_factory=list)
    #: provenance key of each run, by run id
    keys: dict[str, str] = field(default_factory=dict)
    #: the figures whose tables read this batch
    figures: list[str] = field(default_factory=list)
    #: torch threads of its job (1 unless ``engine.cores`` and ``engine.threads`` are set)
    threads: int = 1

    @property
    def name(self) -> str:
        digest = _short_hash(sorted(self.keys[r.run_id] for r in self.runs))[:8]
        depth = f"-d{self.depth}" if self.depth else ""
        return f"{self.dataset.name}{depth}-{self.schedule.optimizer}-{digest}"

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description passed to the training job."""
        return {
            "batch": self.name,
            "figures": sorted(self.figures),
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
                    "provenance_key": self.keys[r.run_id],
                    "depth": r.depth,
                }
                for r in self.runs
            ],
        }
