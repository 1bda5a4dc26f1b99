# Razin & Cohen (2020): Figure 1 and the perturbed 2x2 problems (deep matrix
# factorization, one job per depth), Figure 2 and the rank-3 appendix (CP tensor
# completion, one job per data set and number of observations; the CP ranks of
# the linear baseline and of the ground truth once per distinct tensor).
# Spec: ../shared/spec/razin2020.md. Config: config["razin2020"] (own schema).
# Job specs, seeds and paths: implicit_reg.razin2020.plan.RazinPlan (RZ, built with
# Arora et al.'s plan by implicit_reg.pipeline.planning in common.smk, which also holds the
# rz_* input functions). The figures are rendered by render_figure (figures.smk).
RZ_DL_DIR = config["razin2020"]["data"]["download"]["dir"]
RZ_NAME = r"[A-Za-z0-9_\-]+"


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
        url=rz_download_url,
        sha256=rz_pt_sha256,
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
        sha256=rz_pt_sha256,
    script:
        "../scripts/razin2020_convert.py"


rule razin2020_dataset:
    input:
        unpack(rz_dataset_input),
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
        dataset=rz_dataset_params,
    script:
        "../scripts/razin2020_dataset.py"


# ---------------------------------------------------------------- rules: 2x2 (DMF)


rule razin2020_dmf_batch:
    input:
        problems=rz_dmf_problems,
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
        spec=rz_dmf_spec,
        provenance=rz_dmf_provenance,
        checkpoint=rz_dmf_checkpoint,
    script:
        "../scripts/razin2020_dmf_batch.py"


rule razin2020_dmf_tables:
    input:
        runs=rz_dmf_runs,
        trajectories=rz_dmf_trajectories,
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
        problems=rz_dmf_problems,
    output:
        runs="results/razin2020/dmf_spread/{figure}/depth{depth}/runs.parquet",
        trajectories="results/razin2020/dmf_spread/{figure}/depth{depth}/trajectories.parquet",
        record="results/razin2020/dmf_spread/{figure}/depth{depth}/provenance.json",
    log:
        "logs/razin2020_dmf_spread_batch/{figure}-depth{depth}.log",
    benchmark:
        "benchmarks/razin2020_dmf_spread_batch/{figure}-depth{depth}.tsv"
    wildcard_constraints:
        figure=rz_spread_figure_regex(),
        depth=r"\d+",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        spec=rz_dmf_spread_spec,
        provenance=rz_dmf_spread_provenance,
        checkpoint=rz_dmf_spread_checkpoint,
        trajectory="markers",
    script:
        "../scripts/razin2020_dmf_batch.py"


rule razin2020_dmf_spread_tables:
    input:
        runs=rz_spread_runs,
        trajectories=rz_spread_trajectories,
    output:
        runs="results/{figure}/instances.parquet",
        trajectories="results/{figure}/trajectories_instances.parquet",
        markers="results/{figure}/markers_instances.parquet",
    log:
        "logs/razin2020_dmf_spread_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_dmf_spread_tables/{figure}.tsv"
    wildcard_constraints:
        figure=rz_spread_figure_regex(),
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
        spec=rz_reference_spec,
        provenance=rz_reference_provenance,
    script:
        "../scripts/razin2020_tc_reference.py"


rule razin2020_tc_linear:
    input:
        data="results/razin2020/data/{name}.npz",
        ground_truth=rz_ground_truth_rank,
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
        spec=rz_reference_spec,
        provenance=rz_reference_provenance,
    script:
        "../scripts/razin2020_tc_reference.py"


# The linear baseline's rank-seed spread: the same linear tensor, other ALS seeds.
rule razin2020_tc_linear_spread:
    input:
        data="results/razin2020/data/{name}.npz",
        ground_truth=rz_ground_truth_rank,
    output:
        row="results/razin2020/tc_reference/{name}/linear-n{n_obs}-i{instance}.parquet",
        record="results/razin2020/tc_reference/{name}/linear-n{n_obs}-i{instance}.provenance.json",
    log:
        "logs/razin2020_tc_linear_spread/{name}-n{n_obs}-i{instance}.log",
    benchmark:
        "benchmarks/razin2020_tc_linear_spread/{name}-n{n_obs}-i{instance}.tsv"
    wildcard_constraints:
        name=RZ_NAME,
        n_obs=r"\d+",
        instance=r"[1-9]\d*",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        spec=rz_linear_spread_spec,
        provenance=rz_linear_spread_provenance,
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
        spec=rz_tc_spec,
        provenance=rz_tc_provenance,
        checkpoint=rz_tc_checkpoint,
    script:
        "../scripts/razin2020_tc_train.py"


# The instance spreads of a tensor figure: each instance_datasets item (a named
# variant: the protocol's fixed observed set, or a redrawn one) on instances 0..K.
rule razin2020_tc_spread_train:
    input:
        data="results/razin2020/data/{name}.npz",
    output:
        runs="results/razin2020/tc_spread/{figure}/{variant}/{name}/n{n_obs}/i{instance}/runs.parquet",
        trajectories="results/razin2020/tc_spread/{figure}/{variant}/{name}/n{n_obs}/i{instance}/trajectories.parquet",
        record="results/razin2020/tc_spread/{figure}/{variant}/{name}/n{n_obs}/i{instance}/provenance.json",
    log:
        "logs/razin2020_tc_spread_train/{figure}-{variant}-{name}-n{n_obs}-i{instance}.log",
    benchmark:
        "benchmarks/razin2020_tc_spread_train/{figure}-{variant}-{name}-n{n_obs}-i{instance}.tsv"
    wildcard_constraints:
        figure=rz_tc_spread_figure_regex(),
        variant=r"[A-Za-z0-9_]+",
        name=RZ_NAME,
        instance=r"\d+",
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        spec=rz_tc_spread_spec,
        provenance=rz_tc_spread_provenance,
        checkpoint=rz_tc_spread_checkpoint,
    script:
        "../scripts/razin2020_tc_train.py"


rule razin2020_tc_spread_tables:
    input:
        unpack(rz_tc_spread_inputs),
    output:
        runs="results/{figure}/instances.parquet",
        summary="results/{figure}/summary_instances.parquet",
    log:
        "logs/razin2020_tc_spread_tables/{figure}.log",
    benchmark:
        "benchmarks/razin2020_tc_spread_tables/{figure}.tsv"
    wildcard_constraints:
        figure=rz_tc_spread_figure_regex(),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        variants=rz_tc_spread_variants,
        linear_instances=rz_linear_spread_instances,
    script:
        "../scripts/razin2020_tc_spread_tables.py"


rule razin2020_tc_tables:
    input:
        unpack(rz_tc_table_inputs),
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
        spec=rz_tc_table_spec,
    script:
        "../scripts/razin2020_tc_tables.py"
