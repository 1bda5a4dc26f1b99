# One figure = one job = one notebook (jupytext percent file run by papermill).


rule render_figure:
    input:
        notebook=figure_notebook,
        runs="results/{figure}/runs.parquet",
        trajectories="results/{figure}/trajectories.parquet",
    output:
        pdf="figures/{figure}.pdf",
        png="figures/{figure}.png",
        notebook="results/notebooks/{figure}.ipynb",
    params:
        extra=figure_notebook_params,
    log:
        "logs/render_figure/{figure}.log",
    benchmark:
        "benchmarks/render_figure/{figure}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        f"{ENVS}/figures.yaml"
    script:
        "../scripts/render_figure.py"
