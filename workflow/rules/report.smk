# The LaTeX report: generated fragments are declared inputs of the PDF.


rule report_fragments:
    input:
        published="config/published.yaml",
        runs=all_runs_tables(),
    output:
        provenance="paper/generated/provenance.tex",
        published_table="paper/generated/published_table.tex",
        published_csv="results/published_vs_reproduced.csv",
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
        # update(): Snakemake backs the previous PDF up and puts it back when the build
        # fails (missing latexmk, a LaTeX error) instead of deleting it.
        pdf=update("paper/build/report.pdf"),
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
        "command -v latexmk >/dev/null 2>&1 || {{ echo 'latexmk not found on PATH: install TeX Live"
        " with scripts/setup.sh (the previous PDF stays in place)' | tee {log:q} >&2; exit 1; }};"
        " latexmk -pdf -interaction=nonstopmode -halt-on-error -outdir=build"
        " -cd {input.main:q} > {log:q} 2>&1"
