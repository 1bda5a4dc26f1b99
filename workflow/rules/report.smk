# The LaTeX report: generated fragments are declared inputs of the PDF.


def instance_spread_figures():
    """Figures whose instance-spread tables the scorecard reads (config report.instance_figures)."""
    return list(config.get("report", {}).get("instance_figures", []))


def instance_spread_tables():
    return expand("results/{figure}/instances.parquet", figure=instance_spread_figures())


rule report_fragments:
    input:
        published="config/published.yaml",
        runs=all_runs_tables(),
        instances=instance_spread_tables(),
    output:
        provenance="paper/generated/provenance.tex",
        published_table="paper/generated/published_table.tex",
        numbers="paper/generated/numbers.tex",
        published_csv="paper/generated/published_vs_reproduced.csv",
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
        figures=all_figure_names(),
        instance_figures=instance_spread_figures(),
    script:
        "../scripts/report_fragments.py"


rule report_pdf:
    input:
        main="paper/report.tex",
        sections=report_sections(),
        figures=all_figure_files(),
        provenance="paper/generated/provenance.tex",
        published_table="paper/generated/published_table.tex",
        numbers="paper/generated/numbers.tex",
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
