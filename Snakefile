# Reproduction of Arora et al. (2019) and Razin & Cohen (2020): configuration to PDF.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/factorize.smk"
include: "workflow/rules/convex.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/razin2020.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        report="paper/build/report.pdf",
