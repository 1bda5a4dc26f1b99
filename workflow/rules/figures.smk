# One figure = one job = one notebook (jupytext percent file run by papermill).
# Figures go into `snakemake --report` under one category per paper; the caption
# (workflow/report/figure.rst) names the paper's figure and the notebook.


rule render_figure:
    input:
        notebook=figure_notebook,
        runs="results/{figure}/runs.parquet",
        trajectories="results/{figure}/trajectories.parquet",
        # the published values are drawn on the figures as "published" markers
        published="config/published.yaml",
    output:
        pdf=report(
            "figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Arora et al. (2019)",
            labels={"figure": "{figure}", "format": "PDF"},
        ),
        png=report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category="Arora et al. (2019)",
            labels={"figure": "{figure}", "format": "PNG"},
        ),
        notebook="results/notebooks/{figure}.ipynb",
    log:
        "logs/render_figure/{figure}.log",
    benchmark:
        "benchmarks/render_figure/{figure}.tsv"
    wildcard_constraints:
        figure=r"arora2019_\w+",
    conda:
        f"{ENVS}/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        extra=figure_notebook_params,
    script:
        "../scripts/render_figure.py"
