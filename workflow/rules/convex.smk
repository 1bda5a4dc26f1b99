# Minimum-nuclear-norm baseline (CVXPY + SCS), a CPU job per data set.


rule min_nuclear_norm:
    input:
        unpack(convex_inputs),
    output:
        row="results/convex/{dataset}.parquet",
        solution="results/convex/{dataset}.npz",
    log:
        "logs/min_nuclear_norm/{dataset}.log",
    benchmark:
        "benchmarks/min_nuclear_norm/{dataset}.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        convex=config["convex"],
    script:
        "../scripts/solve_min_nuclear_norm.py"
