# Ground truths and observations (spec arora2019 §1.1, §1.2).


rule ground_truth:
    output:
        ground_truth="results/data/{ground_truth}/ground_truth.npz",
    log:
        "logs/ground_truth/{ground_truth}.log",
    benchmark:
        "benchmarks/ground_truth/{ground_truth}.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=ground_truth_mem_mb,
        runtime=5,
    params:
        dataset=ground_truth_record,
        seed=config["seed"],
    script:
        "../scripts/make_ground_truth.py"


rule observations:
    input:
        ground_truth="results/data/{ground_truth}/ground_truth.npz",
    output:
        observations="results/data/{ground_truth}/m{n_obs}.npz",
    log:
        "logs/observations/{ground_truth}-m{n_obs}.log",
    benchmark:
        "benchmarks/observations/{ground_truth}-m{n_obs}.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=observations_mem_mb,
        runtime=5,
    params:
        dataset=observations_record,
        seed=config["seed"],
    script:
        "../scripts/make_observations.py"


# MovieLens u.data when data.movielens.path is null: the authors' permuted order from
# their repository (source authors) or GroupLens' own order (source grouplens).
rule movielens_authors:
    output:
        ratings="resources/ml-100k/authors/u.data",
    log:
        "logs/movielens_authors/ml-100k.log",
    benchmark:
        "benchmarks/movielens_authors/ml-100k.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        url=lookup(dpath="data/movielens/authors_url", within=config),
        sha256=lookup(dpath="data/movielens/authors_sha256", within=config),
        file_sha256=lookup(dpath="data/movielens/file_sha256", within=config),
    script:
        "../scripts/download_movielens.py"


rule movielens_grouplens:
    output:
        ratings="resources/ml-100k/grouplens/u.data",
    log:
        "logs/movielens_grouplens/ml-100k.log",
    benchmark:
        "benchmarks/movielens_grouplens/ml-100k.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        url=lookup(dpath="data/movielens/url", within=config),
        sha256=lookup(dpath="data/movielens/archive_sha256", within=config),
        file_sha256=None,
    script:
        "../scripts/download_movielens.py"


rule movielens_split:
    input:
        ratings=movielens_input,
    output:
        observations="results/data/movielens/m{n_obs}.npz",
    log:
        "logs/movielens_split/m{n_obs}.log",
    benchmark:
        "benchmarks/movielens_split/m{n_obs}.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        movielens=lookup(dpath="data/movielens", within=config),
        seed=config["seed"],
    script:
        "../scripts/make_movielens_split.py"
