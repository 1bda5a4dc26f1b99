# Minimum-nuclear-norm baseline (CVXPY + SCS), a CPU job per data set not yet solved
# (named by data set and provenance key; finished or archived solves are read).


rule min_nuclear_norm:
    input:
        unpack(convex_inputs),
    output:
        row="results/convex/{job}/row.parquet",
        solution="results/convex/{job}/solution.npz",
        record="results/convex/{job}/provenance.json",
    log:
        "logs/min_nuclear_norm/{job}.log",
    benchmark:
        "benchmarks/min_nuclear_norm/{job}.tsv"
    wildcard_constraints:
        job=convex_job_regex(),
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=convex_mem_mb,
        runtime=convex_runtime,
    params:
        convex=convex_section,
        job=convex_job,
    script:
        "../scripts/solve_min_nuclear_norm.py"
