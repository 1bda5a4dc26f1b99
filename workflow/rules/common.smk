# Shared helpers: config validation, the experiment plan, input functions.
import json
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
from implicit_reg import estimate as job_estimate  # noqa: E402
from implicit_reg.plan import ConfigError, build_plan  # noqa: E402

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

# A bad config fails here, before any job runs, with the key named.
try:
    validate_config(config, load_schema(SCHEMAS / "config.schema.yaml"))
    validate_config(
        config["razin2020"], load_schema(SCHEMAS / "razin2020.schema.yaml"), "razin2020"
    )
    PLAN = build_plan(select_figures(config))
    check_local_data(config)
except (ConfigValidationError, ConfigError) as err:
    raise WorkflowError(str(err)) from None

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
    dataset=r"(completion|sensing)(-n\d+)?-r\d+-m\d+|movielens-m\d+",
    ground_truth=r"(completion|sensing)(-n\d+)?-r\d+",
    figure=r"[A-Za-z0-9_]+",
    n_obs=r"\d+",


def ground_truth_path(dataset):
    return f"results/data/{dataset.ground_truth_name}/ground_truth.npz"


def observations_path(dataset):
    return f"results/data/{dataset.ground_truth_name}/m{dataset.n_obs}.npz"


def batch_inputs(wildcards):
    """Observation file (and ground truth) of a training batch."""
    dataset = PLAN.batches[wildcards.batch].dataset
    inputs = {"observations": observations_path(dataset)}
    if dataset.task != "movielens":
        inputs["ground_truth"] = ground_truth_path(dataset)
    return inputs


def batch_spec(wildcards):
    return PLAN.batches[wildcards.batch].spec()


def convex_inputs(wildcards):
    dataset = PLAN.convex_datasets()[wildcards.dataset]
    return {
        "observations": observations_path(dataset),
        "ground_truth": ground_truth_path(dataset),
    }


def dataset_record(dataset):
    return {
        "name": dataset.name,
        "task": dataset.task,
        "rank": dataset.rank,
        "n_obs": dataset.n_obs,
        "ground_truth_name": dataset.ground_truth_name,
    }


def figure_plan(wildcards):
    return PLAN.figures[wildcards.figure]


def figure_table_inputs(wildcards):
    fig = figure_plan(wildcards)
    ground_truths = {ground_truth_path(d) for d in fig.ground_truth_datasets}
    return {
        "batch_runs": [f"results/runs/{b}/runs.parquet" for b in fig.batches],
        "batch_trajectories": [
            f"results/runs/{b}/trajectories.parquet" for b in fig.batches
        ],
        "convex": [f"results/convex/{d.name}.parquet" for d in fig.convex_datasets],
        "ground_truths": sorted(ground_truths),
    }


def figure_table_params(wildcards):
    fig = figure_plan(wildcards)
    return {
        "figure": fig.name,
        "run_ids": fig.run_ids,
        "ground_truth_datasets": [dataset_record(d) for d in fig.ground_truth_datasets],
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
