"""One planner interface for both papers: from the figures of a configuration to jobs.

Each paper has its own planner (:class:`implicit_reg.arora2019.plan.Plan`,
:class:`implicit_reg.razin2020.plan.RazinPlan`); both implement
:class:`FigurePlanner`, so the workflow asks the same questions of either: which
figures, which notebook draws a figure, which result tables the notebook reads (the
inputs of the render job), with which notebook parameters, and which jobs still have
to be computed for it. :func:`build_plans` is the one entry point the rules call;
:func:`prepare` is everything the Snakefile does before the first rule (schema
validation, the result store, the plans and their log lines).

Paths are the workflow's business: the planners compose their result paths from the
``results_dir`` passed in, and name notebooks as the config does, by stem or path
(:func:`implicit_reg.figures.notebooks.notebook_file` gives the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, runtime_checkable

from implicit_reg.pipeline import estimate as job_estimate
from implicit_reg.results.archive import ArchiveError, ResultStore, recompute_figures, resolve_archive
from implicit_reg.pipeline.config import (
    ConfigValidationError,
    SHARED_DATA_ENV,
    check_local_data,
    defined_figures,
    load_schema,
    merge_config,
    select_figures,
    use_shared_data,
    validate_config,
)

#: Report category of each paper's figures (``snakemake --report``).
PAPER_CATEGORIES = {"arora2019": "Arora et al. (2019)", "razin2020": "Razin & Cohen (2020)"}
#: Rules that train (their logs start with the figures they serve).
TRAINING_RULES = ("train_factorization_batch", "min_nuclear_norm", "razin2020_dmf_batch", "razin2020_tc_train")


class PlanningError(ValueError):
    """A configuration that cannot be planned; the message names the key."""


@runtime_checkable
class FigurePlanner(Protocol):
    """What the workflow asks of a paper's planner (one implementation per paper).

    Figures are named ``<paper>_<figure>``; job names are the planner's own (an Arora
    batch or convex solve, a Razin & Cohen job such as ``razin2020_fig1/depth3``).
    """

    #: the paper's key: ``arora2019`` or ``razin2020``
    paper: str

    def figure_names(self) -> list[str]:
        """The figures this configuration draws, sorted."""

    def figure_notebook(self, figure: str) -> str:
        """The notebook that draws ``figure`` as its config names it: a stem
        (``workflow/notebooks/<stem>.py``) or a ``.py`` path (:func:`implicit_reg.figures.notebooks.notebook_file`)."""

    def figure_tables(self, figure: str) -> dict[str, str]:
        """The result tables the figure's notebook reads, by name (``runs``, ``trajectories``, ...)."""

    def figure_notebook_params(self, figure: str) -> dict[str, Any]:
        """Further papermill parameters of the figure's notebook (config ``notebook_params``)."""

    def jobs_for_figure(self, figure: str) -> list[str]:
        """The jobs still to compute for ``figure`` (empty when everything is restored or found)."""

    def missing_jobs(self, limit: int = 20) -> list[str]:
        """One log line per job to compute, at most ``limit``."""

    def summary(self) -> str:
        """One log line: how many results are restored, found and to compute."""


def build_plans(
    config: Mapping[str, Any],
    store: ResultStore | None = None,
    recompute: Iterable[str] = (),
    results_dir: str | Path = "results",
) -> dict[str, FigurePlanner]:
    """The planner of each paper for a validated configuration (figures already selected).

    Parameters
    ----------
    config
        The configuration after schema validation (defaults filled) and
        :func:`~implicit_reg.pipeline.config.select_figures`.
    store
        Finished results by provenance key (local jobs and the archive); results it
        holds are read, not computed again. None plans every job.
    recompute
        Figures whose results must not be restored from the archive.
    results_dir
        Where the workflow's jobs write their results; every planned path is under it.

    Returns
    -------
    dict
        ``{"arora2019": Plan, "razin2020": RazinPlan}``, in report order.

    Raises
    ------
    PlanningError
        For a configuration value the schema cannot rule out (the key is named).
    """
    from implicit_reg.arora2019.plan import ConfigError, build_plan
    from implicit_reg.razin2020.plan import RazinPlan

    recompute = list(recompute)
    try:
        arora = build_plan(config, store, recompute=recompute, results_dir=str(results_dir))
    except ConfigError as err:
        raise PlanningError(str(err)) from None
    razin = RazinPlan(config["razin2020"], config["seed"], config.get("instances", 0), results_dir=str(results_dir))
    if razin.problems():
        raise PlanningError("invalid razin2020 configuration:\n  " + "\n  ".join(razin.problems()))
    razin.attach_store(store, recompute)
    return {"arora2019": arora, "razin2020": razin}


#: why a figure of the preset is not in this build
NOT_SELECTED = "not in the figures selection"
NOT_RESTORED = "results still to compute; left out by restored_only"


def figures_to_compute(plans: Mapping[str, FigurePlanner]) -> list[str]:
    """The figures that have at least one job to compute (the others are wholly restored or found)."""
    return [figure for plan in plans.values() for figure in plan.figure_names() if plan.jobs_for_figure(figure)]


@dataclass
class Prepared:
    """What the workflow needs before its first rule: the config's store and plans."""

    store: ResultStore
    plans: dict[str, FigurePlanner]
    #: the plan's lines for the log (each paper's summary, then its jobs to compute)
    log_lines: list[str] = field(default_factory=list)
    #: figures of the preset that this build leaves out, with the reason (the report names them):
    #: :data:`NOT_SELECTED` or :data:`NOT_RESTORED`
    omitted_figures: dict[str, str] = field(default_factory=dict)

    def figure_paper(self) -> dict[str, str]:
        """Paper of every figure of the configuration."""
        return {figure: paper for paper, plan in self.plans.items() for figure in plan.figure_names()}

    def figure_names(self) -> list[str]:
        """Every figure of the report: Arora et al.'s, then Razin & Cohen's, each sorted."""
        return [figure for plan in self.plans.values() for figure in plan.figure_names()]

    def planner(self, figure: str) -> FigurePlanner:
        """The planner of the paper ``figure`` belongs to."""
        return self.plans[self.figure_paper()[figure]]

    def estimate(self, jobs: Iterable[tuple[str, Mapping[str, str]]]) -> str:
        """The CPU-time estimate of ``(rule, wildcards)`` jobs about to run (printed at start)."""
        return job_estimate.summary(jobs, self.plans["arora2019"], self.plans["razin2020"])


def apply_sweep_overrides(config: dict[str, Any]) -> list[str]:
    """Merge each Arora et al. figure's ``sweep_overrides`` into every one of its ``sweeps``.

    An overlay config replaces lists whole, so changing one key of a figure's sweeps
    would mean restating them; ``sweep_overrides: {depth: [2, 3, 4, 5]}`` changes that
    key in every sweep of the figure instead (its ``instance_sweeps`` are left alone).

    Parameters
    ----------
    config
        The validated configuration; modified in place (the key is removed).

    Returns
    -------
    list of str
        The figures whose sweeps changed.
    """
    changed = []
    for name, fig in ((config.get("arora2019") or {}).get("figures") or {}).items():
        overrides = fig.pop("sweep_overrides", None)
        if overrides:
            fig["sweeps"] = [{**sweep, **overrides} for sweep in fig["sweeps"]]
            changed.append(name)
    return changed


def validated_config(config: dict[str, Any], schemas: str | Path, root: str | Path = ".",
                     select: bool = True) -> dict[str, Any]:
    """Validate ``config`` against both schemas (defaults filled in place), check local data, select figures.

    Parameters
    ----------
    config
        The merged configuration (Snakemake's ``config``); modified in place.
    schemas
        Directory of ``config.schema.yaml`` and ``razin2020.schema.yaml``.
    root
        The working directory local data paths are relative to.
    select
        Prune the figures to the ``figures`` selection (:func:`select_figures`).

    Returns
    -------
    dict
        ``config`` itself.

    Raises
    ------
    ConfigValidationError
        Naming the offending key.
    """
    schemas = Path(schemas)
    schema = load_schema(schemas / "config.schema.yaml")
    validate_config(config, schema)
    if apply_sweep_overrides(config):
        validate_config(config, schema)  # the overridden sweeps, as the plan will read them
    validate_config(config["razin2020"], load_schema(schemas / "razin2020.schema.yaml"), "razin2020")
    use_shared_data(config, os.environ.get(SHARED_DATA_ENV))  # the team's copies instead of downloads
    check_local_data(config, root)
    return select_figures(config) if select else config


def prepare(
    config: dict[str, Any],
    schemas: str | Path,
    results_dir: str | Path = "results",
    warn: Callable[[str], None] = print,
) -> Prepared:
    """Everything before the first rule: validate, open the result store, plan both papers.

    Parameters
    ----------
    config
        The merged configuration; validated and its figures selected in place.
    schemas
        Directory of the JSON schemas.
    results_dir
        Where the workflow's jobs write their results.
    warn
        Receives one line per unusable archive entry or job record.

    Returns
    -------
    Prepared
        The store, the plans and the lines to log.

    Raises
    ------
    PlanningError
        For any configuration, archive or planning problem (one message naming the key),
        so that the workflow reports it before any job runs.
    """
    try:
        preset_figures = defined_figures(validated_config(config, schemas, select=False))
        if config.get("restored_only") and config.get("recompute"):
            raise PlanningError("restored_only and recompute exclude each other: restored_only builds only what "
                                f"needs no computing, recompute asks to compute {config['recompute']}")
        select_figures(config)
        selected = defined_figures(config)
        store = ResultStore(results_dir, resolve_archive(config), warn=warn)
        plans = build_plans(config, store, recompute_figures(config), results_dir)
        omitted = {f: NOT_SELECTED for f in preset_figures if f not in selected}
        unrestored = figures_to_compute(plans) if config.get("restored_only") else []
        if unrestored:
            kept = [f for f in selected if f not in unrestored]
            if not kept:
                raise PlanningError("restored_only: no figure of this configuration is wholly restored or found "
                                    f"(every one has jobs to compute: {', '.join(unrestored)})")
            config["figures"] = kept
            select_figures(config)
            plans = build_plans(config, store, recompute_figures(config), results_dir)
            omitted = {f: NOT_RESTORED if f in unrestored else omitted[f] for f in preset_figures
                       if f not in kept}
    except (ConfigValidationError, ArchiveError) as err:
        raise PlanningError(str(err)) from None
    lines = []
    if unrestored:
        lines.append(f"restored_only: {len(unrestored)} figure(s) left out, with jobs to compute: "
                     + ", ".join(unrestored))
    for plan in plans.values():
        lines.append(plan.summary())
        lines += [f"  {line}" for line in plan.missing_jobs()]
    restored = store.restored_summary()
    if restored:
        lines.append(restored)
    return Prepared(store, plans, lines, omitted)


def config_keys(configfiles: list[str], root: str | Path = ".") -> set[str]:
    """Every provenance key a config needs: Arora runs and solves, Razin & Cohen jobs.

    The files are merged in order over ``config/config.yaml``, as Snakemake does, and
    validated by :func:`validated_config` (sweep overrides and the team's data copies
    included), as the workflow's start does.

    Parameters
    ----------
    configfiles : list of str
        Config files (e.g. ``config/test.yaml``).
    root : path
        The repository (holding ``config/`` and ``workflow/schemas/``).

    Returns
    -------
    set of str
        Provenance keys of every Arora run and convex solve and every Razin & Cohen job.
    """
    import yaml

    root = Path(root)
    config: dict[str, Any] = yaml.safe_load((root / "config" / "config.yaml").read_text())
    for f in configfiles:
        merge_config(config, yaml.safe_load(Path(f).read_text()) or {})
    # validated as the workflow's start validates it, so the keys are the ones its jobs write
    plans = build_plans(validated_config(config, root / "workflow" / "schemas", root))
    arora, razin = plans["arora2019"], plans["razin2020"]
    return set(arora.run_keys.values()) | {job.key for job in arora.convex_jobs.values()} | razin.all_job_keys()
