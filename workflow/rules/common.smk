# The plans of both papers (implicit_reg.pipeline.planning) and the rules' input functions.
import json
import re
import sys
from pathlib import Path

from snakemake.logging import logger

from implicit_reg.pipeline import memory, planning
from implicit_reg.arora2019 import plan as arora_plan
from implicit_reg.pipeline.config import movielens_file
from implicit_reg.core.data_files import require_local_file
from implicit_reg.figures.notebooks import notebook_file
from implicit_reg.arora2019.convex import RUNTIME_MINUTES, memory_mb

RESULTS = "results"
NOTEBOOKS = "workflow/notebooks"
ENVS = "../../envs"

# A bad config fails here, before any job runs, with the key named. The config is
# validated (defaults filled) and its figures selected in place.
try:
    PREP = planning.prepare(
        config, Path(workflow.basedir) / "workflow" / "schemas", RESULTS, logger.warning
    )
except planning.PlanningError as err:
    raise WorkflowError(str(err)) from None
for line in PREP.log_lines:
    logger.info(line)
PLAN = PREP.plans["arora2019"]
RZ = PREP.plans["razin2020"]
# A job that needs more memory than any machine it may get is refused now, not after
# it has died allocating (implicit_reg.pipeline.memory: estimates from the sizes).
_MEM_LIMIT, _MEM_SOURCE = memory.job_limit_mb(config)
_MEM_REFUSAL = memory.refusal(
    memory.oversized_jobs(PLAN, _MEM_LIMIT, config["dtype"]), _MEM_LIMIT, _MEM_SOURCE
)
if _MEM_REFUSAL:
    raise WorkflowError(_MEM_REFUSAL)


onstart:
    print(
        PREP.estimate(
            (j.rule.name, j.wildcards) for j in workflow.dag.needrun_jobs()
        ),
        file=sys.stderr,
    )


wildcard_constraints:
    batch=r"[A-Za-z0-9.\-]+",
    dataset=r"(completion|sensing)(-n\d+)?-r\d+(-i\d+)?-m\d+(-wr|-fd)?(-[a-z0-9_]+)?|movielens-m\d+",
    ground_truth=r"(completion|sensing)(-n\d+)?-r\d+(-i\d+)?",
    figure=r"[A-Za-z0-9_]+",
    n_obs=r"\d+(-wr|-fd)?",


# ---------------------------------------------------------------- figures (both papers)


def all_figure_names():
    """Every figure of the report: Arora et al.'s, then Razin & Cohen's."""
    return PREP.figure_names()


def all_figure_files():
    return expand("figures/{figure}.pdf", figure=all_figure_names())


def all_runs_tables():
    return expand(f"{RESULTS}/{{figure}}/runs.parquet", figure=all_figure_names())


def render_inputs(wildcards):
    """The figure's notebook and the result tables it reads (passed as <name>_path)."""
    planner = PREP.planner(wildcards.figure)
    notebook = planner.figure_notebook(wildcards.figure)
    return {
        "notebook": notebook_file(notebook, NOTEBOOKS),
        **planner.figure_tables(wildcards.figure),
    }


def render_params(wildcards):
    """The figure's further notebook parameters (JSON)."""
    return json.dumps(
        PREP.planner(wildcards.figure).figure_notebook_params(wildcards.figure)
    )


def figure_category(wildcards):
    """The report category of a figure: its paper."""
    return planning.PAPER_CATEGORIES[PREP.planner(wildcards.figure).paper]


def figure_name_regex():
    return "|".join(re.escape(f) for f in all_figure_names()) or "(?!)"


# ---------------------------------------------------------------- Arora et al.: data


def ground_truth_path(dataset):
    return f"{RESULTS}/data/{dataset.ground_truth_name}/ground_truth.npz"


def observations_path(dataset):
    return (
        f"{RESULTS}/data/{dataset.ground_truth_name}/m{dataset.observations_suffix}.npz"
    )


def ground_truth_record(wildcards):
    """The data set record whose ground truth a job draws (size, rank, instance)."""
    return PLAN.ground_truths[wildcards.ground_truth].record()


def observations_record(wildcards):
    # Data sets that differ only in their convex_variant share one observation file.
    return next(
        d.record()
        for _, d in sorted(PLAN.datasets.items())
        if d.ground_truth_name == wildcards.ground_truth
        and d.observations_suffix == wildcards.n_obs
    )


def ground_truth_mem_mb(wildcards):
    """Estimated peak memory of drawing a ground truth and its singular values."""
    return (
        memory.ground_truth_mb(PLAN.ground_truths[wildcards.ground_truth])
        + config["job_overhead_mb"]
    )


def observations_mem_mb(wildcards):
    """Estimated peak memory of drawing a data set's observations."""
    return config["job_overhead_mb"] + max(
        memory.observations_mb(d)
        for d in PLAN.datasets.values()
        if d.ground_truth_name == wildcards.ground_truth
        and d.observations_suffix == wildcards.n_obs
    )


def batch_mem_mb(wildcards, attempt):
    """Estimated peak memory of a training batch (data, factors and buffers of its runs).

    Multiplied by the attempt: a job killed at its memory limit (Slurm) retries with more.
    """
    estimate = memory.batch_mb(PLAN.batches[wildcards.batch], config["dtype"])
    return (estimate + config["job_overhead_mb"]) * attempt


def batch_threads(wildcards):
    """The threads the plan gave the batch (1 unless engine.cores and engine.threads are set)."""
    return PLAN.batches[wildcards.batch].threads


def movielens_input(wildcards):
    """The local u.data (which must exist now: a job reads it) or the download's output."""
    return movielens_file(config)


# ---------------------------------------------------------------- Arora et al.: training, convex


def batch_name_regex():
    """Only the batches this plan trains match the training rule: finished batches are read, never rerun."""
    return "|".join(re.escape(b) for b in sorted(PLAN.batches)) or "(?!)"


def convex_job_regex():
    return "|".join(re.escape(j) for j in sorted(PLAN.convex_jobs)) or "(?!)"


def batch_inputs(wildcards):
    """Observation file (and ground truth) of a training batch."""
    dataset = PLAN.batches[wildcards.batch].dataset
    inputs = {"observations": observations_path(dataset)}
    if dataset.task != "movielens":
        inputs["ground_truth"] = ground_truth_path(dataset)
    return inputs


def batch_spec(wildcards):
    return PLAN.batches[wildcards.batch].spec()


def convex_job(wildcards):
    job = PLAN.convex_jobs[wildcards.job]
    return {
        "name": job.name,
        "dataset": job.dataset.record(),
        "key": job.key,
        "figures": PLAN.convex_job_figures(wildcards.job),
    }


def convex_section(wildcards):
    """The convex config of a solve (its data set's convex_variant applied)."""
    return arora_plan.convex_section(PLAN.convex_jobs[wildcards.job].dataset, config)


def convex_mem_mb(wildcards):
    """Memory of a solve: a sensing solve holds its dense operator in SCS (17 GB at m = 5000)."""
    dataset = PLAN.convex_jobs[wildcards.job].dataset
    return (
        memory_mb(dataset.task, dataset.n_obs, dataset.shape)
        + config["job_overhead_mb"]
    )


def convex_runtime(wildcards):
    return RUNTIME_MINUTES[PLAN.convex_jobs[wildcards.job].dataset.task]


def convex_inputs(wildcards):
    dataset = PLAN.convex_jobs[wildcards.job].dataset
    return {
        "observations": observations_path(dataset),
        "ground_truth": ground_truth_path(dataset),
    }


# ---------------------------------------------------------------- Arora et al.: figure tables


def figure_plan(wildcards):
    return PLAN.figures[wildcards.figure]


def instance_plan(wildcards):
    """The instance spread of a figure: its instance_sweeps on instances 0..K."""
    return PLAN.figures[wildcards.figure].instances


def arora_figure_regex():
    """Arora et al.'s figures, whatever their names (a new figure needs no prefix)."""
    return "|".join(re.escape(n) for n in PLAN.figure_names()) or "(?!)"


def instance_figure_regex():
    names = [n for n, f in PLAN.figures.items() if f.instances is not None]
    return "|".join(names) or "(?!)"


def figure_table_inputs(wildcards, fig=None):
    fig = fig or figure_plan(wildcards)
    ground_truths = {ground_truth_path(d) for d in fig.ground_truth_datasets}
    return {
        "runs": sorted({s["runs"] for s in fig.sources}),
        "trajectories": sorted({s["trajectories"] for s in fig.sources}),
        "convex": sorted({s["row"] for s in fig.convex_sources}),
        "ground_truths": sorted(ground_truths),
    }


def instance_table_inputs(wildcards):
    return figure_table_inputs(wildcards, instance_plan(wildcards))


def instance_table_params(wildcards):
    return figure_table_params(wildcards, instance_plan(wildcards))


def figure_table_params(wildcards, fig=None):
    fig = fig or figure_plan(wildcards)
    return {
        "instance_labels": fig.instance_labels,
        "figure": fig.name,
        "run_ids": fig.run_ids,
        "sources": fig.sources,
        "convex_sources": fig.convex_sources,
        "ground_truth_datasets": [d.record() for d in fig.ground_truth_datasets],
        "convex_variants": fig.convex_variants,
    }


# ---------------------------------------------------------------- Razin & Cohen


RZ_SHARED_ADVICE = (
    "point it at the authors' exports or set razin2020.data.source to download"
)


def rz_download_url(wildcards):
    return RZ.download_url(wildcards.kind, wildcards.name)


def rz_pt_sha256(wildcards):
    return RZ.datasets[wildcards.name]["pt_sha256"]


def rz_dataset_input(wildcards):
    inputs = RZ.dataset_input(wildcards.name)
    # A job reads it: it must exist now (a build restored from the archive reads none).
    if config["razin2020"]["data"]["source"] == "shared":
        require_local_file(
            inputs["source"], "razin2020.data.data_dir", RZ_SHARED_ADVICE
        )
    return inputs


def rz_dataset_params(wildcards):
    return RZ.dataset_params(wildcards.name)


def rz_dmf_problems(wildcards):
    return RZ.dmf_problems(wildcards.figure)


def rz_dmf_spec(wildcards):
    return RZ.dmf_spec(wildcards.figure, wildcards.depth)


def rz_dmf_provenance(wildcards):
    return RZ.job_provenance("dmf", figure=wildcards.figure, depth=wildcards.depth)


def rz_dmf_spread_spec(wildcards):
    return RZ.dmf_spec(wildcards.figure, wildcards.depth, spread=True)


def rz_dmf_spread_provenance(wildcards):
    return RZ.job_provenance(
        "dmf_spread", figure=wildcards.figure, depth=wildcards.depth
    )


def rz_dmf_runs(wildcards):
    """The figure's per-depth runs tables (own outputs or archive entries)."""
    return RZ.dmf_batches(wildcards.figure, "runs.parquet")


def rz_dmf_trajectories(wildcards):
    return RZ.dmf_batches(wildcards.figure, "trajectories.parquet")


def rz_spread_runs(wildcards):
    """The figure's instance-spread per-depth runs tables."""
    return RZ.spread_batches(wildcards.figure, "runs.parquet")


def rz_spread_trajectories(wildcards):
    return RZ.spread_batches(wildcards.figure, "trajectories.parquet")


def rz_reference_spec(wildcards):
    return RZ.reference_spec(wildcards.name, wildcards.get("n_obs"))


def rz_reference_provenance(wildcards):
    return RZ.job_provenance(
        "tc_reference", name=wildcards.name, n_obs=wildcards.get("n_obs")
    )


def rz_linear_spread_spec(wildcards):
    return RZ.reference_spec(
        wildcards.name, wildcards.n_obs, instance=wildcards.instance
    )


def rz_linear_spread_provenance(wildcards):
    # The spread's job key carries the instance index in "depth".
    return RZ.job_provenance(
        "tc_reference",
        name=wildcards.name,
        n_obs=wildcards.n_obs,
        depth=wildcards.instance,
    )


def rz_linear_spread_instances(wildcards):
    return RZ.linear_spread_instances(wildcards.figure)


def rz_ground_truth_rank(wildcards):
    return RZ.reference_input(wildcards.name)


def rz_tc_spec(wildcards):
    return RZ.tc_spec(wildcards.figure, wildcards.name, wildcards.n_obs)


def rz_tc_provenance(wildcards):
    return RZ.job_provenance(
        "tc_train", figure=wildcards.figure, name=wildcards.name, n_obs=wildcards.n_obs
    )


def rz_tc_spread_spec(wildcards):
    return RZ.tc_spec(
        wildcards.figure,
        wildcards.name,
        wildcards.n_obs,
        instance=wildcards.instance,
        variant=wildcards.variant,
    )


def rz_tc_spread_provenance(wildcards):
    # The spread's job key carries the instance index in "depth".
    return RZ.job_provenance(
        "tc_spread",
        figure=wildcards.figure,
        name=wildcards.name,
        n_obs=wildcards.n_obs,
        depth=wildcards.instance,
        variant=wildcards.variant,
    )


def rz_tc_spread_inputs(wildcards):
    return RZ.tc_spread_inputs(wildcards.figure)


def rz_tc_spread_variants(wildcards):
    return RZ.tc_spread_variants(wildcards.figure)


def rz_tc_table_inputs(wildcards):
    return RZ.tc_table_inputs(wildcards.figure)


def rz_tc_table_spec(wildcards):
    return {"figure": wildcards.figure}


def rz_spread_figure_regex():
    return "|".join(RZ.spread_figures()) or "(?!)"


def rz_tc_spread_figure_regex():
    return "|".join(RZ.tc_spread_figures()) or "(?!)"


# A training job's checkpoint lives next to its log but is not a declared log:
# Snakemake deletes a job's outputs and logs before each attempt, and the checkpoint
# (scratch state, removed on success) must survive a failed one.


def batch_checkpoint_path(wildcards):
    return f"logs/train_factorization_batch/{wildcards.batch}.checkpoint.pt"


def rz_dmf_checkpoint(wildcards):
    return f"logs/razin2020_dmf_batch/{wildcards.figure}-depth{wildcards.depth}.checkpoint.pt"


def rz_dmf_spread_checkpoint(wildcards):
    return f"logs/razin2020_dmf_spread_batch/{wildcards.figure}-depth{wildcards.depth}.checkpoint.pt"


def rz_tc_checkpoint(wildcards):
    w = wildcards
    return f"logs/razin2020_tc_train/{w.figure}-{w.name}-n{w.n_obs}.checkpoint.pt"


def rz_tc_spread_checkpoint(wildcards):
    w = wildcards
    return (
        f"logs/razin2020_tc_spread_train/{w.figure}-{w.variant}-{w.name}"
        f"-n{w.n_obs}-i{w.instance}.checkpoint.pt"
    )


# ---------------------------------------------------------------- report


def report_sections():
    """Hand-written report sections (each one an input, so editing one rebuilds the PDF)."""
    return sorted(str(p) for p in Path("paper/sections").glob("*.tex"))


def results_root(wildcards, input):
    """The results directory, inferred from the figure tables (results/<figure>/runs.parquet)."""
    return str(Path(input.runs[0]).parents[1])
