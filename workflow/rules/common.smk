# Shared helpers: config validation, the experiment plan, input functions.
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from implicit_reg.config import (  # noqa: E402
    ConfigValidationError,
    check_local_data,
    load_schema,
    select_figures,
    validate_config,
)
from snakemake.logging import logger  # noqa: E402

from implicit_reg.archive import (  # noqa: E402
    ArchiveError,
    ResultStore,
    recompute_figures,
    resolve_archive,
)
from implicit_reg import estimate as job_estimate  # noqa: E402
from implicit_reg.arora2019.plan import ConfigError, build_plan  # noqa: E402

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

# A bad config fails here, before any job runs, with the key named.
try:
    validate_config(config, load_schema(SCHEMAS / "config.schema.yaml"))
    validate_config(
        config["razin2020"], load_schema(SCHEMAS / "razin2020.schema.yaml"), "razin2020"
    )
    check_local_data(config)
    # Finished results by provenance key: jobs under results/ and the archive's entries.
    STORE = ResultStore("results", resolve_archive(config), warn=logger.warning)
    PLAN = build_plan(
        select_figures(config), STORE, recompute=recompute_figures(config)
    )
except (ConfigValidationError, ConfigError, ArchiveError) as err:
    raise WorkflowError(str(err)) from None
logger.info(PLAN.summary())
for line in PLAN.missing_jobs():
    logger.info(f"  {line}")

ENVS = "../../envs"


onstart:
    print(
        job_estimate.summary(
            ((j.rule.name, j.wildcards) for j in workflow.dag.needrun_jobs()),
            PLAN,
            RZ,
        ),
        file=sys.stderr,
    )


wildcard_constraints:
    batch=r"[A-Za-z0-9.\-]+",
    dataset=r"(completion|sensing)(-n\d+)?-r\d+(-i\d+)?-m\d+(-wr)?|movielens-m\d+",
    ground_truth=r"(completion|sensing)(-n\d+)?-r\d+(-i\d+)?",
    figure=r"[A-Za-z0-9_]+",
    n_obs=r"\d+(-wr)?",


def ground_truth_path(dataset):
    return f"results/data/{dataset.ground_truth_name}/ground_truth.npz"


def observations_path(dataset):
    return (
        f"results/data/{dataset.ground_truth_name}/m{dataset.observations_suffix}.npz"
    )


def ground_truth_record(wildcards):
    """The data set record whose ground truth a job draws (size, rank, instance)."""
    return PLAN.ground_truths[wildcards.ground_truth].record()


def observations_record(wildcards):
    return PLAN.datasets[f"{wildcards.ground_truth}-m{wildcards.n_obs}"].record()


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
    figures = [
        f.name for f in PLAN.figures.values() if job.dataset in f.convex_datasets
    ]
    return {
        "name": job.name,
        "dataset": job.dataset.record(),
        "key": job.key,
        "figures": figures,
    }


def convex_inputs(wildcards):
    dataset = PLAN.convex_jobs[wildcards.job].dataset
    return {
        "observations": observations_path(dataset),
        "ground_truth": ground_truth_path(dataset),
    }


def figure_plan(wildcards):
    return PLAN.figures[wildcards.figure]


def instance_plan(wildcards):
    """The instance spread of a figure: its instance_sweeps on instances 0..K."""
    return PLAN.figures[wildcards.figure].instances


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
    }


def figure_notebook(wildcards):
    return f"workflow/notebooks/{figure_plan(wildcards).notebook}.py"


def figure_notebook_params(wildcards):
    return json.dumps(figure_plan(wildcards).notebook_params)


def all_figure_names():
    """Every figure of the report: Arora et al. from the plan, Razin & Cohen from razin2020.smk."""
    return sorted(PLAN.figures) + razin2020_figure_names()


def all_figure_files():
    return expand("figures/{figure}.pdf", figure=all_figure_names())


def all_runs_tables():
    return expand("results/{figure}/runs.parquet", figure=all_figure_names())


def movielens_input(wildcards):
    path = config["data"]["movielens"]["path"]
    return path if path else "resources/ml-100k/u.data"


def report_sections():
    """Hand-written report sections (each one an input, so editing one rebuilds the PDF)."""
    return sorted(str(p) for p in Path("paper/sections").glob("*.tex"))


def results_root(wildcards, input):
    """The results directory, inferred from the figure tables (results/<figure>/runs.parquet)."""
    return str(Path(input.runs[0]).parents[1])


def batch_checkpoint_path(wildcards):
    return f"logs/train_factorization_batch/{wildcards.batch}.checkpoint.pt"
