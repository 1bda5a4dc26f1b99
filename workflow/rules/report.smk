# The LaTeX report: generated fragments are declared inputs of the PDF. The setup of the
# build (setup.tex) is written from the config, and every figure of the config that no
# hand-written section shows gets a generated section (figure_sections.tex).
# `snakemake --report` shows the figures (figures.smk, razin2020.smk), the scorecard
# and the provenance, introduced by workflow/report/workflow.rst.


report: "../report/workflow.rst"


from types import SimpleNamespace  # noqa: E402

from implicit_reg.scorecard.published import load_published  # noqa: E402
from implicit_reg.scorecard.spread import instance_table_name  # noqa: E402

# Figures whose instance-spread tables the scorecard reads: config
# report.instance_figures (default none). Each published entry of such a figure
# needs the spread table of its result table (instances.parquet for runs.parquet,
# <stem>_instances.parquet otherwise), so those are the rule's inputs.
INSTANCE_FIGURES = set(config.get("report", {}).get("instance_figures", []))
# ... and every figure whose instance spread the plan runs (instances > 0, instance_sweeps).
INSTANCE_FIGURES |= {n for n, f in PLAN.figures.items() if f.instances is not None}
INSTANCE_FIGURES |= set(RZ.spread_figures()) | set(RZ.tc_spread_figures())
INSTANCE_TABLES = sorted(
    {
        f"results/{e.figure}/{instance_table_name(e.table)}"
        for e in load_published(
            Path(workflow.basedir) / "config" / "published.yaml", resolve=False
        )
        if e.figure in INSTANCE_FIGURES
    }
)


# Seconds of work (latexmk included): where Snakemake runs, on a cluster too.


localrules:
    report_fragments,
    report_pdf,


rule report_fragments:
    input:
        published="config/published.yaml",
        readings="config/readings.yaml",
        runs=all_runs_tables(),
        instances=INSTANCE_TABLES,
        # the figures they show; the others get a generated section
        sections=report_sections(),
    output:
        provenance=report(
            "paper/generated/provenance.tex",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"file": "provenance.tex"},
        ),
        published_table="paper/generated/published_table.tex",
        numbers="paper/generated/numbers.tex",
        setup="paper/generated/setup.tex",
        figure_sections="paper/generated/figure_sections.tex",
        published_csv=report(
            "paper/generated/published_vs_reproduced.csv",
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
        figures=all_figure_names(),
        omitted_figures=PREP.omitted_figures,
        instance_figures=sorted(INSTANCE_FIGURES),
        # the notebook that draws each figure, as the render rule reads it
        notebooks={
            f: render_inputs(SimpleNamespace(figure=f))["notebook"]
            for f in all_figure_names()
        },
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
        setup="paper/generated/setup.tex",
        figure_sections="paper/generated/figure_sections.tex",
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
