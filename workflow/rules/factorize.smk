# Gradient descent on deep matrix factorizations: one job per batch of missing runs
# sharing a data set, depth and schedule (PyTorch, GPU when the job has one).
# Finished batches (their provenance.json exists) and archived runs are read, not
# matched by this rule, so code changes that alter no number never retrain them.


rule train_factorization_batch:
    input:
        unpack(batch_inputs),
    output:
        runs="results/runs/{batch}/runs.parquet",
        trajectories="results/runs/{batch}/trajectories.parquet",
        products="results/runs/{batch}/final_products.npz",
        record="results/runs/{batch}/provenance.json",
    log:
        "logs/train_factorization_batch/{batch}.log",
    benchmark:
        "benchmarks/train_factorization_batch/{batch}.tsv"
    wildcard_constraints:
        batch=batch_name_regex(),
    conda:
        f"{ENVS}/compute.yaml"
    # the plan's threads for the job (engine.cores and engine.threads); numbers do not depend on it.
    threads: batch_threads
    resources:
        mem_mb=batch_mem_mb,
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
