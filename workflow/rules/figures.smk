# One figure = one job = one notebook (jupytext percent file run by papermill), for
# both papers: the paper's planner names the notebook, the result tables it reads
# (each passed as <name>_path) and its further parameters (render_inputs, render_params).
# Figures go into `snakemake --report` under one category per paper; the caption
# (workflow/report/figure.rst) names the paper's figure and the notebook.

# Seconds of work each: on a cluster they run where Snakemake runs, not as Slurm jobs
# that would wait in the queue and start Snakemake twice for them (report.smk too).


localrules:
    render_figure,


rule render_figure:
    input:
        unpack(render_inputs),
        # the published values are drawn on the figures as "published" markers
        published="config/published.yaml",
    output:
        pdf=report(
            "figures/{figure}.pdf",
            caption="../report/figure.rst",
            category=figure_category,
            labels={"figure": "{figure}", "format": "PDF"},
        ),
        png=report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            labels={"figure": "{figure}", "format": "PNG"},
        ),
        notebook="results/notebooks/{figure}.ipynb",
    log:
        "logs/render_figure/{figure}.log",
    benchmark:
        "benchmarks/render_figure/{figure}.tsv"
    wildcard_constraints:
        figure=figure_name_regex(),
    conda:
        f"{ENVS}/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        extra=render_params,
    script:
        "../scripts/render_figure.py"


# Every figure is a target by its name: `snakemake arora2019_fig1`.
for figure_name in all_figure_names():

    rule:
        name:
            figure_name
        input:
            pdf=f"figures/{figure_name}.pdf",
            png=f"figures/{figure_name}.png",
        localrule: True
