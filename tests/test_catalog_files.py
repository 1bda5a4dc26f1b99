"""The Snakemake workflow catalog's standard files: license, citation, catalog config, CI."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_citation_cites_the_project_and_both_papers() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # the fields CFF 1.2.0 requires
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert cff["type"] == "software" and cff["license"] == "MIT"
    titles = {ref["title"]: ref for ref in cff["references"]}
    arora = titles["Implicit Regularization in Deep Matrix Factorization"]
    razin = titles["Implicit Regularization in Deep Learning May Not Be Explainable by Norms"]
    assert [a["family-names"] for a in arora["authors"]] == ["Arora", "Cohen", "Hu", "Luo"]
    assert [a["family-names"] for a in razin["authors"]] == ["Razin", "Cohen"]
    assert (arora["year"], razin["year"]) == (2019, 2020)


def test_catalog_file_declares_conda_and_report() -> None:
    usage = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True
    assert usage["mandatory-flags"]["desc"]


def test_catalog_cost_comes_from_the_benchmark_results() -> None:
    """The catalog's CPU-hours are bench/results.json's (python -m implicit_reg.pipeline.catalog --write)."""
    import json

    from implicit_reg.pipeline import catalog

    results = json.loads((ROOT / "bench" / "results.json").read_text())
    text = (ROOT / catalog.CATALOG).read_text()
    assert text == catalog.render(results), "regenerate: python -m implicit_reg.pipeline.catalog --write"
    cpu_h, wall_h = catalog.paper_cost(results)
    assert f"{cpu_h:.1f}\n      CPU-hours ({wall_h:.1f} h on 2 cores" in text
    changed = [dict(r, value=r["value"] * 2) if r["name"].startswith("pipeline total") else r for r in results]
    assert catalog.render(changed) != text  # the numbers follow the results


def test_forge_ci_runs_lint_format_and_the_test_script() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    commands = " ".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    assert "snakemake --lint" in commands
    assert "snakefmt --check workflow Snakefile" in commands
    assert "bash .ci/run" in commands
    assert (ROOT / ".ci" / "run").is_file()


def test_readme_speaks_of_the_project_alone() -> None:
    text = (ROOT / "README.md").read_text()
    assert not re.search(r"\bissues?\b|closing notes?|\bnotes\b", text, flags=re.I)
    for path in ("config/README.md", "LICENSE", "CITATION.cff", "profiles/slurm/README.md"):
        assert path in text or Path(path).name in text, path
