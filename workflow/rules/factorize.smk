# Gradient descent on deep matrix factorizations: one job per batch of runs
# sharing a data set, depth and schedule (PyTorch, GPU when the job has one).


rule train_factorization_batch:
    input:
        unpack(batch_inputs),
    output:
        runs="results/runs/{batch}/runs.parquet",
        trajectories="results/runs/{batch}/trajectories.parquet",
        products="results/runs/{batch}/final_products.npz",
    log:
        "logs/train_factorization_batch/{batch}.log",
    benchmark:
        "benchmarks/train_factorization_batch/{batch}.tsv"
    conda:
        f"{ENVS}/compute.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=720,
        gpu=0,
    params:
        spec=batch_spec,
        device=config["device"],
        dtype=config["dtype"],
        engine=config["engine"],
        group_rmsprop=lookup(dpath="arora2019/group_rmsprop", within=config),
        # Snakemake deletes a job's outputs and logs before each attempt, so the
        # checkpoint (scratch state, removed on success) is neither.
        checkpoint=batch_checkpoint_path,
        alignment_total=lookup(dpath="data/movielens/alignment_total", within=config),
    script:
        "../scripts/train_factorization_batch.py"
