# Ground truths and observations (spec arora2019 §1.1, §1.2).


rule ground_truth:
    output:
        ground_truth="results/data/{task}-r{rank}/ground_truth.npz",
    params:
        size=lookup(dpath="arora2019/matrix_size", within=config),
        seed=config["seed"],
    log:
        "logs/ground_truth/{task}-r{rank}.log",
    benchmark:
        "benchmarks/ground_truth/{task}-r{rank}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        f"{ENVS}/compute.yaml"
    script:
        "../scripts/make_ground_truth.py"


rule observations:
    input:
        ground_truth="results/data/{task}-r{rank}/ground_truth.npz",
    output:
        observations="results/data/{task}-r{rank}/m{n_obs}.npz",
    params:
        seed=config["seed"],
    log:
        "logs/observations/{task}-r{rank}-m{n_obs}.log",
    benchmark:
        "benchmarks/observations/{task}-r{rank}-m{n_obs}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        f"{ENVS}/compute.yaml"
    script:
        "../scripts/make_observations.py"


rule download_movielens:
    output:
        ratings="resources/ml-100k/u.data",
    params:
        url=lookup(dpath="data/movielens/url", within=config),
        sha256=lookup(dpath="data/movielens/archive_sha256", within=config),
    log:
        "logs/download_movielens/ml-100k.log",
    benchmark:
        "benchmarks/download_movielens/ml-100k.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        f"{ENVS}/compute.yaml"
    script:
        "../scripts/download_movielens.py"


rule movielens_split:
    input:
        ratings=movielens_input,
    output:
        observations="results/data/movielens/m{n_obs}.npz",
    params:
        movielens=lookup(dpath="data/movielens", within=config),
        seed=config["seed"],
    log:
        "logs/movielens_split/m{n_obs}.log",
    benchmark:
        "benchmarks/movielens_split/m{n_obs}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        f"{ENVS}/compute.yaml"
    script:
        "../scripts/make_movielens_split.py"
