# One tidy runs table and one trajectories table per figure.


rule collect_figure_results:
    input:
        unpack(figure_table_inputs),
    output:
        runs="results/{figure}/runs.parquet",
        trajectories="results/{figure}/trajectories.parquet",
    log:
        "logs/collect_figure_results/{figure}.log",
    benchmark:
        "benchmarks/collect_figure_results/{figure}.tsv"
    wildcard_constraints:
        figure=arora_figure_regex(),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        plan=figure_table_params,
    script:
        "../scripts/collect_figure_results.py"


# The instance spread of a figure's published values: its instance_sweeps on the
# figure's own instance and K further seeded ones, with columns instance and sampling.
rule collect_instance_results:
    input:
        unpack(instance_table_inputs),
    output:
        runs="results/{figure}/instances.parquet",
        trajectories="results/{figure}/trajectories_instances.parquet",
    log:
        "logs/collect_instance_results/{figure}.log",
    benchmark:
        "benchmarks/collect_instance_results/{figure}.tsv"
    wildcard_constraints:
        figure=instance_figure_regex(),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        plan=instance_table_params,
    script:
        "../scripts/collect_figure_results.py"
