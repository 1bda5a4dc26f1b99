# Razin & Cohen (2020): Figure 1 and the perturbed 2x2 problems (deep matrix
# factorization, one job per depth), Figure 2 and the rank-3 appendix (CP tensor
# completion, one job per data set and number of observations; the CP ranks of
# the linear baseline and of the ground truth once per distinct tensor).
# Spec: ../shared/spec/razin2020.md. Config: config["razin2020"] (own schema).
# Job specs, seeds and paths: implicit_reg.razin2020.plan.RazinPlan.
from implicit_reg.razin2020.plan import RazinPlan  # noqa: E402

RZ = RazinPlan(config["razin2020"], config["seed"], config.get("instances", 0))
# Finished and archived jobs are read from the same store as Arora's runs (common.smk).
RZ.attach_store(STORE, recompute_figures(config))
if RZ.problems():
    raise WorkflowError(
        "invalid razin2020 configuration:\n  " + "\n  ".join(RZ.problems())
    )
RZ_DL_DIR = config["razin2020"]["data"]["download"]["dir"]
RZ_NAME = r"[A-Za-z0-9_\-]+"
# Called by common.smk for the report's inputs: the enabled Razin & Cohen figures.
razin2020_figure_names = RZ.figure_names


# ---------------------------------------------------------------- rules: data


rule razin2020_download:
    output:
        pt=f"{RZ_DL_DIR}/{{kind}}/{{name}}.pt",
    log:
        "logs/razin2020_download/{kind}-{name}.log",
    benchmark:
        "benchmarks/razin2020_download/{kind}-{name}.tsv"
    wildcard_constraints:
        kind="dmf|tc",
        name=RZ_NAME,
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        url=lambda wc: RZ.download_url(wc.kind, wc.name),
        sha256=lambda wc: RZ.datasets[wc.name]["pt_sha256"],
    script:
        "../scripts/razin2020_download.py"


rule razin2020_convert:
    input:
        pt=f"{RZ_DL_DIR}/{{kind}}/{{name}}.pt",
    output:
        export=f"{RZ_DL_DIR}/{{kind}}/{{name}}.{{ext}}",
    log:
        "logs/razin2020_convert/{kind}-{name}-{ext}.log",
    benchmark:
        "benchmarks/razin2020_convert/{kind}-{name}-{ext}.tsv"
    wildcard_constraints:
        kind="dmf|tc",
        name=RZ_NAME,
        ext="json|npz",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        sha256=lambda wc: RZ.datasets[wc.name]["pt_sha256"],
    script:
        "../scripts/razin2020_convert.py"


rule razin2020_dataset:
    input:
        unpack(lambda wc: RZ.dataset_input(wc.name)),
    output:
        export="results/razin2020/data/{name}.{ext}",
    log:
        "logs/razin2020_dataset/{name}-{ext}.log",
    benchmark:
        "benchmarks/razin2020_dataset/{name}-{ext}.tsv"
    wildcard_constraints:
        name=RZ_NAME,
        ext="json|npz",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dataset=lambda wc: RZ.dataset_params(wc.name),
    script:
        "../scripts/razin2020_dataset.py"


# ---------------------------------------------------------------- rules: 2x2 (DMF)


rule razin2020_dmf_batch:
    input:
        problems=lambda wc: RZ.dmf_problems(wc.figure),
    output:
        runs="results/razin2020/dmf/{figure}/depth{depth}/runs.parquet",
        trajectories="results/razin2020/dmf/{figure}/depth{depth}/trajectories.parquet",
        record="results/razin2020/dmf/{figure}/depth{depth}/provenance.json",
    log:
        "logs/razin2020_dmf_batch/{figure}-depth{depth}.log",
    benchmark:
        "benchmarks/razin2020_dmf_batch/{figure}-depth{depth}.tsv"
    wildcard_constraints:
        figure=RZ.figure_regex("dmf"),
        depth=r"\d+",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        spec=lambda wc: RZ.dmf_spec(wc.figure, wc.depth),
        provenance=lambda wc: RZ.job_provenance("dmf", figure=wc.figure, depth=wc.depth),
        # Not a declared log: Snakemake deletes declared logs when a job starts again.
        checkpoint=lambda wc: f"logs/razin2020_dmf_batch/{wc.figure}-depth{wc.depth}.checkpoint.pt",
    script:
        "../scripts/razin2020_dmf_batch.py"


rule razin2020_dmf_tables:
    input:
        runs=lambda wc: RZ.dmf_batches(wc.figure, "runs.parquet"),
        trajectories=lambda wc: RZ.dmf_batches(wc.figure, "trajectories.parquet"),
    output:
        runs="results/{figure}/runs.parquet",
        trajectories="results/{figure}/trajectories.parquet",
        markers="results/{figure}/markers.parquet",
    log:
        "logs/razin2020_dmf_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_dmf_tables/{figure}.tsv"
    wildcard_constraints:
        figure=RZ.figure_regex("dmf"),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/razin2020_dmf_tables.py"


# The instance spread of a 2x2 figure: its instance_panels with seeds 0..K (instances).
rule razin2020_dmf_spread_batch:
    input:
        problems=lambda wc: RZ.dmf_problems(wc.figure),
    output:
        runs="results/razin2020/dmf_spread/{figure}/depth{depth}/runs.parquet",
        trajectories="results/razin2020/dmf_spread/{figure}/depth{depth}/trajectories.parquet",
        record="results/razin2020/dmf_spread/{figure}/depth{depth}/provenance.json",
    log:
        "logs/razin2020_dmf_spread_batch/{figure}-depth{depth}.log",
    benchmark:
        "benchmarks/razin2020_dmf_spread_batch/{figure}-depth{depth}.tsv"
    wildcard_constraints:
        figure="|".join(RZ.spread_figures()) or "(?!)",
        depth=r"\d+",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        spec=lambda wc: RZ.dmf_spec(wc.figure, wc.depth, spread=True),
        provenance=lambda wc: RZ.job_provenance(
            "dmf_spread", figure=wc.figure, depth=wc.depth
        ),
        checkpoint=lambda wc: f"logs/razin2020_dmf_spread_batch/{wc.figure}-depth{wc.depth}.checkpoint.pt",
    script:
        "../scripts/razin2020_dmf_batch.py"


rule razin2020_dmf_spread_tables:
    input:
        runs=lambda wc: RZ.spread_batches(wc.figure, "runs.parquet"),
        trajectories=lambda wc: RZ.spread_batches(wc.figure, "trajectories.parquet"),
    output:
        runs="results/{figure}/instances.parquet",
        trajectories="results/{figure}/trajectories_instances.parquet",
        markers="results/{figure}/markers_instances.parquet",
    log:
        "logs/razin2020_dmf_spread_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_dmf_spread_tables/{figure}.tsv"
    wildcard_constraints:
        figure="|".join(RZ.spread_figures()) or "(?!)",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        instances=True,
    script:
        "../scripts/razin2020_dmf_tables.py"


# ---------------------------------------------------------------- rules: tensor completion


rule razin2020_tc_ground_truth:
    input:
        data="results/razin2020/data/{name}.npz",
    output:
        row="results/razin2020/tc_reference/{name}/ground_truth.parquet",
        record="results/razin2020/tc_reference/{name}/ground_truth.provenance.json",
    log:
        "logs/razin2020_tc_ground_truth/{name}.log",
    benchmark:
        "benchmarks/razin2020_tc_ground_truth/{name}.tsv"
    wildcard_constraints:
        name=RZ_NAME,
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        spec=lambda wc: RZ.reference_spec(wc.name),
        provenance=lambda wc: RZ.job_provenance("tc_reference", name=wc.name),
    script:
        "../scripts/razin2020_tc_reference.py"


rule razin2020_tc_linear:
    input:
        data="results/razin2020/data/{name}.npz",
        ground_truth=lambda wc: RZ.reference_input(wc.name),
    output:
        row="results/razin2020/tc_reference/{name}/linear-n{n_obs}.parquet",
        record="results/razin2020/tc_reference/{name}/linear-n{n_obs}.provenance.json",
    log:
        "logs/razin2020_tc_linear/{name}-n{n_obs}.log",
    benchmark:
        "benchmarks/razin2020_tc_linear/{name}-n{n_obs}.tsv"
    wildcard_constraints:
        name=RZ_NAME,
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        spec=lambda wc: RZ.reference_spec(wc.name, wc.n_obs),
        provenance=lambda wc: RZ.job_provenance(
            "tc_reference", name=wc.name, n_obs=wc.n_obs
        ),
    script:
        "../scripts/razin2020_tc_reference.py"


rule razin2020_tc_train:
    input:
        data="results/razin2020/data/{name}.npz",
    output:
        runs="results/razin2020/tc_train/{figure}/{name}/n{n_obs}/runs.parquet",
        trajectories="results/razin2020/tc_train/{figure}/{name}/n{n_obs}/trajectories.parquet",
        record="results/razin2020/tc_train/{figure}/{name}/n{n_obs}/provenance.json",
    log:
        "logs/razin2020_tc_train/{figure}-{name}-n{n_obs}.log",
    benchmark:
        "benchmarks/razin2020_tc_train/{figure}-{name}-n{n_obs}.tsv"
    wildcard_constraints:
        figure=RZ.figure_regex("tc"),
        name=RZ_NAME,
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        spec=lambda wc: RZ.tc_spec(wc.figure, wc.name, wc.n_obs),
        provenance=lambda wc: RZ.job_provenance(
            "tc_train", figure=wc.figure, name=wc.name, n_obs=wc.n_obs
        ),
        checkpoint=lambda wc: f"logs/razin2020_tc_train/{wc.figure}-{wc.name}-n{wc.n_obs}.checkpoint.pt",
    script:
        "../scripts/razin2020_tc_train.py"


# The instance spread of a tensor figure: instance_datasets on instances 0..K.
rule razin2020_tc_spread_train:
    input:
        data="results/razin2020/data/{name}.npz",
    output:
        runs="results/razin2020/tc_spread/{figure}/{name}/n{n_obs}/i{instance}/runs.parquet",
        trajectories="results/razin2020/tc_spread/{figure}/{name}/n{n_obs}/i{instance}/trajectories.parquet",
        record="results/razin2020/tc_spread/{figure}/{name}/n{n_obs}/i{instance}/provenance.json",
    log:
        "logs/razin2020_tc_spread_train/{figure}-{name}-n{n_obs}-i{instance}.log",
    benchmark:
        "benchmarks/razin2020_tc_spread_train/{figure}-{name}-n{n_obs}-i{instance}.tsv"
    wildcard_constraints:
        figure="|".join(RZ.tc_spread_figures()) or "(?!)",
        name=RZ_NAME,
        instance=r"\d+",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        spec=lambda wc: RZ.tc_spec(wc.figure, wc.name, wc.n_obs, instance=wc.instance),
        provenance=lambda wc: RZ.job_provenance(
            "tc_spread",
            figure=wc.figure,
            name=wc.name,
            n_obs=wc.n_obs,
            depth=wc.instance,
        ),
        checkpoint=lambda wc: f"logs/razin2020_tc_spread_train/{wc.figure}-{wc.name}-n{wc.n_obs}-i{wc.instance}.checkpoint.pt",
    script:
        "../scripts/razin2020_tc_train.py"


rule razin2020_tc_spread_tables:
    input:
        unpack(lambda wc: RZ.tc_spread_inputs(wc.figure)),
    output:
        runs="results/{figure}/instances.parquet",
        summary="results/{figure}/summary_instances.parquet",
    log:
        "logs/razin2020_tc_spread_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_tc_spread_tables/{figure}.tsv"
    wildcard_constraints:
        figure="|".join(RZ.tc_spread_figures()) or "(?!)",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/razin2020_tc_spread_tables.py"


rule razin2020_tc_tables:
    input:
        unpack(lambda wc: RZ.tc_table_inputs(wc.figure)),
    output:
        runs="results/{figure}/runs.parquet",
        trajectories="results/{figure}/trajectories.parquet",
        summary="results/{figure}/summary.parquet",
    log:
        "logs/razin2020_tc_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_tc_tables/{figure}.tsv"
    wildcard_constraints:
        figure=RZ.figure_regex("tc"),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=lambda wc: {"figure": wc.figure},
    script:
        "../scripts/razin2020_tc_tables.py"


# ---------------------------------------------------------------- rules: figures


rule razin2020_render:
    input:
        unpack(lambda wc: RZ.render_inputs(wc.figure)),
        # the published values are drawn on the figures as "published" markers
        published="config/published.yaml",
    output:
        pdf=report(
            "figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Razin & Cohen (2020)",
            labels={"figure": "{figure}", "format": "PDF"},
        ),
        png=report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category="Razin & Cohen (2020)",
            labels={"figure": "{figure}", "format": "PNG"},
        ),
        notebook="results/notebooks/{figure}.ipynb",
    log:
        "logs/razin2020_render/{figure}.log",
    benchmark:
        "benchmarks/razin2020_render/{figure}.tsv"
    wildcard_constraints:
        figure=r"razin2020_\w+",
    conda:
        f"{ENVS}/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        extra=lambda wc: RZ.notebook_params(wc.figure),
    script:
        "../scripts/razin2020_render.py"
