"""From the configuration to the jobs of the pipeline (no Snakemake inside).

A figure's config lists *sweeps* (grids over task, rank, number of
observations, depth, initialization, learning rate and seeds). The plan
expands them into runs, deduplicates runs that several figures share, and gives
each run its provenance key (:func:`run_payload`): the parameters, data identity
and numerics versions that determine its numbers. A run whose key a
:class:`~implicit_reg.results.archive.ResultStore` already holds (a finished local job or an
archive entry) is read from there; only the *missing* runs are grouped into
*batches*, one per data set, depth and schedule (at most ``engine.max_batch_runs``
runs each): one batch is one training job that trains its runs as one stacked
tensor. A batch is named by its data set, depth, optimizer and the hash of its runs'
keys, so adding one init scale to a sweep trains exactly the new runs. Sensing
batches hold every depth (see :data:`SHARED_OPERATOR_TASKS`).

Errors in the config that the JSON schema cannot express (more observations
than entries, say) raise :class:`ConfigError` naming the offending key.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from implicit_reg.results import archive
from implicit_reg.arora2019 import batching, costs, job_costs
from implicit_reg.arora2019.plan_items import (  # noqa: F401 - the plan's vocabulary, re-exported
    SAMPLING_SUFFIXES,
    SHARED_OPERATOR_TASKS,
    TASKS,
    Batch,
    ConfigError,
    Dataset,
    Run,
    ScheduleSpec,
    _short_hash,
    convex_payload,
    convex_section,
    data_identity,
    ground_truth_seed_keys,
    observations_seed_keys,
    run_payload,
)


@dataclass
class ConvexJob:
    """One minimum-nuclear-norm solve, named by its data set and provenance key."""

    dataset: Dataset
    key: str

    @property
    def name(self) -> str:
        return f"{self.dataset.name}-{self.key[:8]}"


@dataclass
class FigurePlan:
    """What one figure needs.

    ``sources`` lists where its runs are read: one item per file set, ``{"runs": path,
    "trajectories": path, "run_ids": [...]}`` (a training batch's tables, or an archive
    entry holding both); ``convex_sources`` likewise ``{"row": path, "dataset": name}``.
    """

    name: str
    paper: str
    notebook: str
    notebook_params: dict[str, Any]
    run_ids: list[str]
    batches: list[str]
    convex_datasets: list[Dataset]
    ground_truth_datasets: list[Dataset]
    sources: list[dict[str, Any]] = field(default_factory=list)
    convex_sources: list[dict[str, Any]] = field(default_factory=list)
    #: the instance spread of this figure (its ``instance_sweeps`` on instances 0..K), if any
    instances: "FigurePlan | None" = None
    #: run id (or baseline row id) -> [instance, sampling, variant], for instance-spread tables
    instance_labels: dict[str, list] = field(default_factory=dict)
    #: convex variants of an instance spread: each also gets the protocol's other rows
    convex_variants: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """All datasets, batches to train, convex solves and figures of a configuration.

    Implements :class:`implicit_reg.pipeline.planning.FigurePlanner` (the interface the workflow
    uses for both papers); ``figures`` holds the full :class:`FigurePlan` of each figure.
    """

    datasets: dict[str, Dataset]
    batches: dict[str, Batch]
    figures: dict[str, FigurePlan]
    convex_jobs: dict[str, ConvexJob] = field(default_factory=dict)
    #: provenance key of every run, by run id
    run_keys: dict[str, str] = field(default_factory=dict)
    #: how many runs / solves come from where: restored, local, train, stale
    counts: dict[str, int] = field(default_factory=dict)
    #: where the workflow's jobs write (every planned path is under it)
    results_dir: str = "results"
    paper: str = "arora2019"

    # ---- the planner interface (implicit_reg.pipeline.planning.FigurePlanner) ----

    def figure_names(self) -> list[str]:
        """The figures of this configuration, sorted."""
        return sorted(self.figures)

    def figure_notebook(self, figure: str) -> str:
        """Stem of the notebook that draws ``figure``."""
        return self.figures[figure].notebook

    def figure_tables(self, figure: str) -> dict[str, str]:
        """The figure's runs and trajectories tables (what its notebook reads)."""
        return {"runs": f"{self.results_dir}/{figure}/runs.parquet",
                "trajectories": f"{self.results_dir}/{figure}/trajectories.parquet"}

    def figure_notebook_params(self, figure: str) -> dict[str, Any]:
        return dict(self.figures[figure].notebook_params)

    def jobs_for_figure(self, figure: str) -> list[str]:
        """The training batches and convex solves still to compute for ``figure`` (its spread included)."""
        plans = [self.figures[figure]]
        if self.figures[figure].instances is not None:
            plans.append(self.figures[figure].instances)
        batches = sorted({b for p in plans for b in p.batches})
        convex = sorted({name for p in plans for d in p.convex_datasets
                         for name, job in self.convex_jobs.items() if job.dataset == d})
        return batches + convex

    def convex_job_figures(self, name: str) -> list[str]:
        """The figures whose tables read convex solve ``name``."""
        dataset = self.convex_jobs[name].dataset
        return [f.name for f in self.figures.values() if dataset in f.convex_datasets]

    @property
    def ground_truths(self) -> dict[str, Dataset]:
        """One data set per ground-truth name (what a ground-truth job draws)."""
        out: dict[str, Dataset] = {}
        for d in self.datasets.values():
            out.setdefault(d.ground_truth_name, d)
        return out

    def convex_datasets(self) -> dict[str, Dataset]:
        out: dict[str, Dataset] = {}
        for fig in self.figures.values():
            for d in fig.convex_datasets:
                out[d.name] = d
        return out

    def missing_jobs(self, limit: int = 20) -> list[str]:
        """One line per job to compute (batches, then convex solves), at most ``limit``."""
        lines = [f"to train: {name} ({len(b.runs)} runs; {', '.join(b.figures)})"
                 for name, b in sorted(self.batches.items())]
        lines += [f"to solve: min_nuclear_norm {name}" for name in sorted(self.convex_jobs)]
        if len(lines) > limit:
            lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
        return lines

    def summary(self) -> str:
        """One line for the log: what is restored, found, and computed."""
        c = self.counts
        return (f"arora2019: {c.get('runs', 0)} runs: {c.get('archive', 0)} restored from the archive, "
                f"{c.get('local', 0)} already in {self.results_dir}/, {c.get('train', 0)} to train in "
                f"{len(self.batches)} batches ({c.get('stale', 0)} archived under an older config or "
                f"numerics version); {c.get('convex', 0)} convex solves: {c.get('convex_archive', 0)} restored, "
                f"{c.get('convex_local', 0)} in {self.results_dir}/, {len(self.convex_jobs)} to solve")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]



def build_plan(
    config: dict[str, Any],
    store: "archive.ResultStore | None" = None,
    recompute: Iterable[str] = (),
    results_dir: str = "results",
) -> Plan:
    """Expand the (schema-validated, defaults-filled) config into a :class:`Plan`.

    Parameters
    ----------
    config : dict
        The validated config.
    store : ResultStore, optional
        Finished results by provenance key; runs it holds are not trained again.
    recompute : iterable of str
        Figures whose runs and solves must not be restored from the archive (results
        computed in ``results/`` still count).
    results_dir : str
        Where the workflow's jobs write; the paths of batches and solves to compute are under it.
    """
    section = config["arora2019"]
    size = int(section["matrix_size"])
    base_seed = int(config["seed"])
    recompute = set(recompute)
    n_instances = int(config.get("instances", 0))
    figures: dict[str, FigurePlan] = {}
    runs_by_id: dict[str, Run] = {}
    figures_of_run: dict[str, list[str]] = {}
    plans: list[tuple[FigurePlan, list[Run]]] = []  # every figure and instance-spread table
    for fig_name, fig in section["figures"].items():
        where = f"arora2019.figures.{fig_name}"
        fig_runs: list[Run] = []
        for i, sweep in enumerate(fig["sweeps"]):
            fig_runs.extend(_expand_sweep(sweep, f"{where}.sweeps[{i}]", size, config, base_seed))
        figures[fig_name] = _figure_plan(fig_name, fig, fig_runs)
        plans.append((figures[fig_name], fig_runs))
        if n_instances and fig.get("instance_sweeps"):
            spread_runs = list(_expand_instances(fig["instance_sweeps"], f"{where}.instance_sweeps", size,
                                                 config, base_seed, n_instances))
            spread = _figure_plan(fig_name, fig, spread_runs)
            spread.instance_labels = {r.run_id: [r.dataset.instance, r.dataset.sampling, r.dataset.variant]
                                      for r in spread_runs}
            for d in sorted({r.dataset for r in spread_runs}, key=lambda d: d.name):  # params: no hash order
                spread.instance_labels[f"min_nuclear_norm:{d.name}"] = [d.instance, d.sampling, d.variant]
                spread.instance_labels[f"ground_truth:{d.name}"] = [d.instance, d.sampling, d.variant]
            _add_convex_variants(spread, fig, config, f"{where}.instance_convex_variants")
            figures[fig_name].instances = spread
            plans.append((spread, spread_runs))
    datasets: dict[str, Dataset] = {}
    for fig_plan, fig_runs in plans:
        for run in fig_runs:
            datasets.setdefault(run.dataset.name, run.dataset)
            runs_by_id.setdefault(run.run_id, run)
            if fig_plan.name not in figures_of_run.setdefault(run.run_id, []):
                figures_of_run[run.run_id].append(fig_plan.name)
    identities = {name: data_identity(d, config) for name, d in datasets.items()}
    for fig_plan, _ in plans:  # a convex variant's data set is its protocol's: same identity
        for d in fig_plan.convex_datasets:
            identities.setdefault(d.name, data_identity(d, config))
    run_keys = {rid: archive.provenance_key(run_payload(run, config, identities[run.dataset.name]))
                for rid, run in runs_by_id.items()}
    counts = {"runs": len(runs_by_id), "archive": 0, "local": 0, "train": 0, "stale": 0}

    # Where each run is read from: a finished job, an archive entry, or a batch to train.
    located: dict[str, tuple[str, str, str]] = {}  # run id -> (runs path, trajectories path, group)
    missing: dict[tuple, list[Run]] = {}
    computed: dict[tuple, list[Run]] = {}  # runs not restored from the archive: missing or finished here
    for rid in sorted(runs_by_id):
        run, key = runs_by_id[rid], run_keys[rid]
        use_archive = not recompute.intersection(figures_of_run[rid])
        source = store.find(key, use_archive=use_archive) if store is not None else None
        if source is None or source.origin == "local":
            computed.setdefault(run.batch_key, []).append(run)
        if source is not None:
            counts[source.origin] += 1
            located[rid] = (archive.entry_table_path(source, "runs"),
                            archive.entry_table_path(source, "trajectories"), source.job)
            continue
        if store is not None and store.is_stale(rid, key):
            counts["stale"] += 1
        missing.setdefault(run.batch_key, []).append(run)
    batches: dict[str, Batch] = {}
    for group in (*missing.values(), *computed.values()):
        group.sort(key=lambda r: r.order)
    for chunk, threads, (dataset, depth, schedule) in _training_jobs(missing, computed, config, run_keys, store):
        if chunk:
            batch = Batch(dataset, depth, schedule, chunk, {r.run_id: run_keys[r.run_id] for r in chunk},
                          threads=threads)
            batch.figures = sorted({f for r in chunk for f in figures_of_run[r.run_id]})
            batches[batch.name] = batch
            for r in chunk:
                located[r.run_id] = (f"{results_dir}/runs/{batch.name}/runs.parquet",
                                     f"{results_dir}/runs/{batch.name}/trajectories.parquet", batch.name)
            counts["train"] += len(chunk)

    # Convex solves: one per data set, restored like runs.
    convex_jobs: dict[str, ConvexJob] = {}
    counts.update(convex=0, convex_archive=0, convex_local=0)
    convex_sources: dict[str, dict[str, Any]] = {}
    for fig_plan, _ in plans:
        groups: dict[tuple[str, str], list[str]] = {}
        for rid in fig_plan.run_ids:
            runs_path, traj_path, _ = located[rid]
            groups.setdefault((runs_path, traj_path), []).append(rid)
        fig_plan.sources = [{"runs": r, "trajectories": t, "run_ids": ids} for (r, t), ids in sorted(groups.items())]
        fig_plan.batches = sorted({located[rid][2] for rid in fig_plan.run_ids if located[rid][2] in batches})
        for d in fig_plan.convex_datasets:
            if d.name not in convex_sources:
                job = ConvexJob(d, archive.provenance_key(convex_payload(d, config, identities[d.name])))
                source = (store.find(job.key, use_archive=fig_plan.name not in recompute)
                          if store is not None else None)
                counts["convex"] += 1
                if source is not None:
                    counts[f"convex_{source.origin}"] += 1
                    convex_sources[d.name] = {"row": archive.entry_table_path(source, "row"), "dataset": d.name}
                else:
                    convex_jobs[job.name] = job
                    convex_sources[d.name] = {"row": f"{results_dir}/convex/{job.name}/row.parquet",
                                              "dataset": d.name}
            fig_plan.convex_sources.append(convex_sources[d.name])
    return Plan(datasets=datasets, batches=batches, figures=figures, convex_jobs=convex_jobs,
                run_keys=run_keys, counts=counts, results_dir=results_dir)


def _training_jobs(missing: dict[tuple, list[Run]], computed: dict[tuple, list[Run]], config: dict[str, Any],
                   run_keys: dict[str, str], store: "archive.ResultStore | None",
                   ) -> list[tuple[list[Run], int, tuple]]:
    """(runs, threads, group key) of every training job of the missing runs.

    Without ``engine.cores``: even chunks of each group's missing runs. With it, the split
    (:func:`batching.plan_jobs`) is made over every run this configuration computes, finished
    here or not, and each job keeps its missing runs: the plan, and so every job name, stays
    the same while jobs finish (a cluster job plans again when it starts, and must find its
    batch). Costs are the archive's measurements where it holds the run (what ``--recompute``
    redoes), else the spec's estimates.
    """
    engine = config["engine"]
    if engine.get("cores") is None:
        jobs = batching.plan_jobs(missing, engine, _estimated_run_costs, _group_description)
        return [(j.runs, j.threads, key) for key, group in jobs.items() for j in group]
    measured = job_costs.read_archived_runs(store.archive_dir if store is not None else None)

    def measured_costs(key: tuple, runs: list[Run]) -> tuple[list[float], list[float]]:
        return group_run_costs(key, runs, run_keys, measured)[:2]

    todo = {r.run_id for group in missing.values() for r in group}
    jobs = batching.plan_jobs(computed, engine, measured_costs, _group_description)
    return [([r for r in j.runs if r.run_id in todo], j.threads, key) for key, group in jobs.items() for j in group]


def group_run_costs(key: tuple, runs: list[Run], run_keys: dict[str, str], measured: job_costs.ArchivedRuns,
                    ) -> tuple[list[float], list[float], list[bool]]:
    """The costs the cluster plan splits a group by: each run's iterations and CPU seconds per
    iteration alone, and whether both were measured (:func:`job_costs.run_costs`: the archive's
    measurements, else the estimates of :mod:`implicit_reg.arora2019.costs`).

    Parameters
    ----------
    key : tuple
        The group's (data set, depth, schedule).
    runs : list of Run
        Its runs, in the planner's order (:attr:`Run.order`).
    run_keys : dict
        Run id -> provenance key.
    measured : job_costs.ArchivedRuns
        What the archive measured (:func:`job_costs.read_archived_runs`).
    """
    return job_costs.run_costs(runs, run_keys, measured, lambda rs: _estimated_run_costs(key, rs))


def _estimated_run_costs(key: tuple, runs: list[Run]) -> tuple[list[float], list[float]]:
    """Each run's estimated iterations and CPU seconds per iteration alone (a group of one)."""
    batch = Batch(key[0], key[1], key[2], list(runs))
    curve = job_costs.group_curve(batch.dataset.task, batch.schedule.optimizer)
    alone = batching.relative_cost(curve, 1) / batching.relative_cost(curve, len(runs))
    return ([costs.run_iterations(batch, r.lr, r.init_scale, r.depth) for r in runs],
            [costs.run_iteration_seconds(batch, r.depth) * alone for r in runs])


def _group_description(key: tuple) -> tuple[str, str, bool, int]:
    """(task, optimizer, shared operator?, entries a step reads) of a batch key, for :mod:`batching`.

    A step reads the matrix (completion, MovieLens), or the measurement operator, m × n²
    (sensing): what threads share out.
    """
    dataset, _, schedule = key
    shared = dataset.task in SHARED_OPERATOR_TASKS
    entries = int(dataset.shape[0]) * int(dataset.shape[1]) * (int(dataset.n_obs) if dataset.task == "sensing" else 1)
    return dataset.task, schedule.optimizer, shared, entries


def _add_convex_variants(spread: FigurePlan, fig: dict[str, Any], config: dict[str, Any], where: str) -> None:
    """Solve the spread's protocol data sets again under each ``instance_convex_variants`` entry.

    Each variant is a named ``convex.variants`` entry; its rows are labelled by its name,
    and the spread table gives it the protocol's other rows (``FigurePlan.convex_variants``).
    """
    names = list(fig.get("instance_convex_variants", []))
    known = config["convex"].get("variants", {})
    for v in names:
        if v not in known:
            raise ConfigError(f"{where}: {v!r} is not in convex.variants ({', '.join(sorted(known)) or 'none'})")
    if not names or not spread.convex_datasets:
        return
    protocol = [d for d in spread.convex_datasets if d.variant == "protocol"]
    # a new list: convex_datasets may be the very list of ground_truth_datasets
    spread.convex_datasets = list(spread.convex_datasets)
    for v in names:
        for d in protocol:
            vd = replace(d, convex_variant=v)
            spread.convex_datasets.append(vd)
            spread.instance_labels[f"min_nuclear_norm:{vd.name}"] = [d.instance, d.sampling, v]
    spread.convex_variants = names


def _figure_plan(name: str, fig: dict[str, Any], runs: list[Run]) -> FigurePlan:
    """A figure's (or its instance spread's) runs, data sets and baselines."""
    fig_datasets: dict[str, Dataset] = {}
    for run in runs:
        fig_datasets.setdefault(run.dataset.name, run.dataset)
    synthetic = [d for d in fig_datasets.values() if d.task != "movielens"]
    return FigurePlan(
        name=name,
        paper="arora2019",
        notebook=fig["notebook"],
        notebook_params=dict(fig.get("notebook_params", {})),
        run_ids=sorted({r.run_id for r in runs}),
        batches=[],
        convex_datasets=synthetic if fig.get("min_nuclear_norm", False) else [],
        ground_truth_datasets=synthetic if fig.get("ground_truth", False) else [],
    )


def _expand_instances(
    sweeps: list[dict[str, Any]], where: str, size: int, config: dict[str, Any], base_seed: int,
    n_instances: int,
) -> Iterable[Run]:
    """The instance spread: each sweep on instances 0..K under each of its samplings."""
    for i, sweep in enumerate(sweeps):
        samplings = list(sweep.get("sampling", ["without_replacement"]))
        if sweep["task"] != "completion" and samplings != ["without_replacement"]:
            raise ConfigError(f"{where}[{i}].sampling: only completion draws entries (task is {sweep['task']!r})")
        plain = {k: v for k, v in sweep.items() if k != "sampling"}
        for sampling in samplings:
            for instance in range(n_instances + 1):
                yield from _expand_sweep(plain, f"{where}[{i}]", size, config, base_seed, instance, sampling)


def _expand_sweep(
    sweep: dict[str, Any], where: str, size: int, config: dict[str, Any], base_seed: int,
    instance: int = 0, sampling: str = "without_replacement",
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
            dataset=Dataset(task, rank, m, shape, size, instance=instance, sampling=sampling),
            depth=int(depth),
            init=sweep["init"],
            init_scale=float(init_scale),
            lr=float(lr),
            seed=int(seed),
            schedule=schedule,
            base_seed=base_seed,
        )
