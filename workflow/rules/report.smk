# The LaTeX report: generated fragments are declared inputs of the PDF.
# `snakemake --report` shows the figures (figures.smk, razin2020.smk), the scorecard
# and the provenance, introduced by workflow/report/workflow.rst.


report: "../report/workflow.rst"


rule report_fragments:
    input:
        published="config/published.yaml",
        runs=all_runs_tables(),
    output:
        provenance=report(
            "paper/generated/provenance.tex",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"file": "provenance.tex"},
        ),
        published_table="paper/generated/published_table.tex",
        published_csv=report(
            "results/published_vs_reproduced.csv",
            caption="../report/scorecard.rst",
            category="Scorecard",
            labels={"table": "published vs reproduced"},
        ),
    log:
        "logs/report_fragments/report.log",
    benchmark:
        "benchmarks/report_fragments/report.tsv"
    conda:
        f"{ENVS}/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results_dir=results_root,
        config=config,
    script:
        "../scripts/report_fragments.py"


rule report_pdf:
    input:
        main="paper/report.tex",
        sections=report_sections(),
        figures=all_figure_files(),
        provenance="paper/generated/provenance.tex",
        published_table="paper/generated/published_table.tex",
    output:
        pdf="paper/build/report.pdf",
    log:
        "logs/report_pdf/report.log",
    benchmark:
        "benchmarks/report_pdf/report.tsv"
    conda:
        f"{ENVS}/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "latexmk -pdf -interaction=nonstopmode -halt-on-error -outdir=build"
        " -cd {input.main:q} > {log:q} 2>&1"
