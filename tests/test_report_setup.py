"""The report's setup statements come from the configuration (implicit_reg.report.setup_text,
report_phrases) and every configured figure gets a section (implicit_reg.report.figure_sections)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from implicit_reg.pipeline.config import merge_config
from implicit_reg.pipeline.planning import validated_config
from implicit_reg.report.figure_sections import (
    default_caption,
    figure_sections_tex,
    handwritten_figures,
    run_count,
)
from implicit_reg.report.phrases import grid_phrase, tex_number, values_phrase
from implicit_reg.report.setup_text import figure_setups, settings, setup_tex, spread_sizes

REPO = Path(__file__).resolve().parents[1]
SECTIONS = sorted((REPO / "paper" / "sections").glob("*.tex"))


def _config(*overlays: str | dict) -> dict:
    """config.yaml with each overlay merged over it (a file under config/ or a mapping), validated.

    As a user's clone has it: without the team data that IMPLICIT_REG_SHARED_DATA points the
    development and CI machines at (it switches the data sources to the local copies).
    """
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for overlay in overlays:
        extra = yaml.safe_load((REPO / "config" / overlay).read_text()) if isinstance(overlay, str) else overlay
        merge_config(cfg, copy.deepcopy(extra))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("IMPLICIT_REG_SHARED_DATA", raising=False)
        return validated_config(cfg, REPO / "workflow" / "schemas", root=REPO)


@pytest.fixture(scope="module")
def paper() -> dict:
    return _config()


@pytest.fixture(scope="module")
def test_preset() -> dict:
    return _config("test.yaml")


def test_numbers_read_as_the_sections_wrote_them() -> None:
    assert tex_number(100) == "$100$" and tex_number(10000) == "$10{,}000$"
    assert tex_number(1e6) == "$10^{6}$" and tex_number(2e5) == "$2\\cdot10^{5}$"
    assert tex_number(5e6) == "$5\\cdot10^{6}$" and tex_number(1e-3) == "$10^{-3}$"
    assert tex_number(2.5e-4) == "$2.5\\cdot10^{-4}$" and tex_number(0.1) == "$0.1$"
    assert tex_number(0.01) == "$10^{-2}$" and tex_number(0.01, plain=True) == "$0.01$"
    assert tex_number(-2) == "$-2$" and tex_number(0.5) == "$0.5$"
    # evenly spaced grids are written as a range, a grid ending at "every entry" too
    assert grid_phrase(range(1000, 3501, 250)) == "$1000$ to $3500$ in steps of $250$"
    assert grid_phrase([50, 100, 150, 200, 250, 511]) == "$50$ to $250$ in steps of $50$, and $511$"
    assert grid_phrase([120, 200]) == "$120$ and $200$"
    # a list is written alike: the perturbations as decimals, init scales as powers of ten
    assert values_phrase([0, 0.01, 0.05]) == "$0$, $0.01$ and $0.05$"
    assert values_phrase([1e-2, 1e-3]) == "$10^{-2}$ and $10^{-3}$"
    assert values_phrase([1e-2, 3e-3]) == "$10^{-2}$ and $3\\cdot10^{-3}$"


def test_the_test_preset_states_its_own_setup(test_preset: dict, paper: dict) -> None:
    """The issue's case: the test preset's report said 100 x 100, rank 5 and 10, three seeds."""
    test, full = settings(test_preset), settings(paper)
    assert test["preset"] == "test" and test["seed"] == "$7$"
    assert test["arora.shape"] == "$20\\times20$" and full["arora.shape"] == "$100\\times100$"
    assert test["arora.seeds"] == "two initialization seeds" and full["arora.seeds"] == "three initialization seeds"
    assert test["arora.grids"] == "rank 2: $m$ = $120$ and $200$"
    assert full["arora.grids"] == ("rank 5: $m$ = $1000$ to $3500$ in steps of $250$; "
                                   "rank 10: $m$ = $2000$ to $6000$ in steps of $500$")
    assert test["arora.grouprmsprop.cap"] == "$3000$" and full["arora.grouprmsprop.cap"] == "$10^{6}$"
    assert test["arora.grouprmsprop.tol"] == "$10^{-5}$" and full["arora.gd.cap"] == "$2\\cdot10^{5}$"
    assert test["arora.movielens"] == "$300$ training ratings of the $40\\times30$ matrix"
    assert "\\texttt{max\\_iters} $5000$" in test["convex.solver"]
    assert "\\texttt{max\\_iters} $20{,}000$" in full["convex.solver"]
    assert test["razin.dmf.stop"] == "eleven consecutive logged losses are below $10^{-3}$"
    assert full["razin.dmf.cap"] == "$5\\cdot10^{6}$" and test["razin.dmf.cap"] == "$20{,}000$"
    assert full["razin.fig1.count"] == "twelve runs (depths $2$, $3$ and $4$, four per depth)"
    assert test["razin.fig1.count"] == "four runs (depths $2$ and $3$, two per depth)"
    assert full["razin.tc.components"] == "$64$ and $512$" and test["razin.tc.components"] == "$64$"
    assert full["razin.cp.relerr"] == "a relative error of 2.3\\,\\% for order 3 and 6.4\\,\\% for order 4"
    assert test["razin.perturbed.data"].endswith("with $\\varepsilon$ = $0$ and $0.1$")
    assert "generated" in test["razin.data"] and "c20e02c" in full["razin.data"]
    # no paper-scale statement in the test preset's setup
    for text in test.values():
        assert "100\\times100" not in text and "rank 5" not in text


def test_each_figure_lists_its_own_runs(test_preset: dict, paper: dict) -> None:
    test, full = figure_setups(test_preset), figure_setups(paper)
    assert set(test) == set(full) == set(test_preset["arora2019"]["figures"]) | set(
        test_preset["razin2020"]["figures"])
    assert test["arora2019_fig1"] == (
        "Runs: (a) completion, $20\\times20$, rank $2$, $m$ = $120$ and $200$ observed entries, depths $2$ and"
        " $3$, Gaussian init $10^{-2}$, lr $10^{-2}$, GroupRMSprop, 2 seeds; (b) as (a) with depth $2$,"
        " Gaussian init $5\\cdot10^{-3}$.")
    assert full["arora2019_fig1"].startswith(
        "Runs: (a) completion, $100\\times100$, rank $5$, $m$ = $1000$ to $3500$ in steps of $250$ observed"
        " entries, depths $2$, $3$ and $4$, Gaussian init $10^{-3}$, lr $10^{-3}$, GroupRMSprop, 3 seeds;"
        " (b) as (a) with depth $2$, Gaussian inits $5\\cdot10^{-4}$ and $2.5\\cdot10^{-4}$; (c) as (a) with"
        " rank $10$, $m$ = $2000$ to $6000$ in steps of $500$ observed entries;")
    assert "Instance spread (instances $0$ to $10$)" in full["arora2019_fig1"]
    assert "Instance spread" not in test["arora2019_fig1"]  # instances: 0
    # per-sweep sizes and caps (sensing at n = 12, MovieLens depths 2-3 capped)
    assert "sensing, $12\\times12$" in test["arora2019_fig4"]
    assert "MovieLens-100K ($1682\\times943$, $10{,}000$ training ratings), depths $2$ and $3$, at most" \
           " $50{,}000$ steps" in full["arora2019_fig3"]
    assert "Baselines: the minimum-nuclear-norm solution and the ground truth" in full["arora2019_n2"]
    assert "repeated with \\texttt{scs2\\_accuracy}" in full["arora2019_n2"]
    assert "depths $2$ and $3$: lr $6\\cdot10^{-3}$, init $10^{-3}$; lr $6\\cdot10^{-3}$, init $10^{-3}$ (b)" \
           " ($\\det P>0$ at initialization)" in test["razin2020_fig1"]
    assert "with $n$ = $100$ and $400$" in test["razin2020_fig2"]
    assert "$50$ to $450$ in steps of $50$, and $511$" in full["razin2020_fig2"]


def test_the_spread_statement_follows_what_runs(test_preset: dict, paper: dict) -> None:
    """A tensor spread with its own instances runs even at instances: 0, and is said to."""
    assert spread_sizes(paper)["arora2019_fig1"] == [10] and spread_sizes(paper)["razin2020_fig2"] == [10, 50]
    quiet = _config("test.yaml", {"razin2020": {"figures": {"razin2020_fig2": {"instance_datasets": []}}}})
    assert spread_sizes(quiet) == {}
    assert settings(quiet)["spread"] == "This build runs no instance spread (configuration \\texttt{instances}: $0$)"
    expected = {"razin2020_fig2": [50]} if test_preset["razin2020"]["figures"]["razin2020_fig2"].get(
        "instance_datasets") else {}
    assert spread_sizes(test_preset) == expected


def test_setup_tex_defines_every_key_the_sections_read(test_preset: dict, paper: dict) -> None:
    used = set()
    for path in SECTIONS:
        used |= set(re.findall(r"\\setting\{([^}]+)\}", path.read_text(encoding="utf-8")))
    assert {"arora.shape", "arora.seeds", "razin.dmf.stop", "razin.tc.inits"} <= used
    for cfg in (test_preset, paper):
        tex = setup_tex(cfg, {"arora2019_fig1": "workflow/notebooks/arora2019_error_vs_observations.py"})
        defined = set(re.findall(r"\\settingdef\{([^}]+)\}", tex))
        assert used <= defined, used - defined
        assert "\\figuresourcedef{arora2019_fig1}{\\detokenize{workflow/notebooks/arora2019_error_vs_" in tex
        assert tex.count("\\figuresetupdef{") == len(figure_setups(cfg))
        # braces balance in every definition (a stray one would break the PDF build)
        for line in tex.splitlines()[1:]:
            assert line.count("{") - line.count("\\{") == line.count("}") - line.count("\\}"), line


def test_sections_state_no_setup_of_their_own() -> None:
    """The paper's setup figures that used to be hand-written (100 x 100, the m grids, the caps)
    appear in the sections only as the paper's, never as this build's."""
    arora = (REPO / "paper" / "sections" / "arora2019.tex").read_text(encoding="utf-8")
    razin = (REPO / "paper" / "sections" / "razin2020.tex").read_text(encoding="utf-8")
    for stale in ("100\\times100", "$m=1000,\\dots,3500$", "three\ninitialization seeds", "rank-5 and rank-10",
                  "depths 2,\n  3, 4", "tolerances $10^{-6}$", "5\\cdot10^6$ iterations", "The twelve runs",
                  "(64 and 512)", "at most 1000 sweeps", "The test preset uses generated data"):
        assert stale not in arora and stale not in razin, stale
    assert "\\figsource" not in arora + razin  # the notebook's path is generated (\figuresource)
    for text in (arora, razin):
        figures = re.findall(r"\\includefigure(?:\[[^\]]*\])?\{(\w+)\}", text)
        assert figures == re.findall(r"\\figuresetup\{(\w+)\}", text) == re.findall(r"\\figuresource\{(\w+)\}", text)


EXTRA = {
    "arora2019": {"figures": {"arora2019_fig1_rank3": {
        "notebook": "arora2019_error_vs_observations",
        "notebook_params": {"y_scale": "linear"},
        "sweeps": [{"task": "completion", "rank": 3, "n_obs": [120, 200], "depth": [2, 3, 4],
                    "init": "gaussian", "init_scale": 1.0e-2, "lr": 1.0e-2, "optimizer": "grouprmsprop",
                    "seeds": 2}]}}}}


def test_a_configured_figure_without_a_section_gets_a_generated_one(test_preset: dict) -> None:
    cfg = _config("test.yaml", EXTRA)
    handwritten = handwritten_figures(p.read_text(encoding="utf-8") for p in SECTIONS)
    assert "arora2019_fig1" in handwritten and "arora2019_fig1_rank3" not in handwritten
    assert handwritten_figures(["% \\includefigure{commented_out}\n\\includefigure[0.5\\linewidth]{a_b}"]) == {"a_b"}
    figures = list(cfg["arora2019"]["figures"]) + list(cfg["razin2020"]["figures"])
    # every figure has a hand-written section: a comment only
    assert "\\section" not in figure_sections_tex(test_preset, [f for f in figures if f in handwritten],
                                                  handwritten)
    assert run_count("arora2019", EXTRA["arora2019"]["figures"]["arora2019_fig1_rank3"]) == 12
    df = pd.DataFrame([{"id": "x", "paper": "arora2019", "figure": "arora2019_fig1_rank3",
                        "description": "Depth-2 error", "reading": "printed", "published": 0.5,
                        "reproduced": 0.4, "n_rows": 2, "tolerance": "0.05", "verdict": "agrees",
                        "instances": 0, "published_percentile": float("nan")}])
    tex = figure_sections_tex(cfg, figures, handwritten, df)
    assert tex.count("\\subsection{") == 1 and "\\section{Further figures of this configuration}" in tex
    assert "\\includefigure{arora2019_fig1_rank3}" in tex and "\\figurenote{arora2019_fig1_rank3}" in tex
    assert "\\figuresetup{arora2019_fig1_rank3}" in tex and "\\figuresource{arora2019_fig1_rank3}" in tex
    assert default_caption("arora2019_fig1_rank3", "arora2019", cfg["arora2019"]["figures"]["arora2019_fig1_rank3"]) \
        in tex and "12 runs (completion runs of deep matrix factorization)" in tex
    assert "\\begin{longtable}" in tex and "Depth-2 error" in tex  # its scorecard rows
    # a caption and a title from the configuration, escaped
    titled = _config("test.yaml", EXTRA, {"arora2019": {"figures": {"arora2019_fig1_rank3": {
        "title": "Rank 3 & depth", "caption": "Error vs m for rank_3."}}}})
    tex = figure_sections_tex(titled, figures, handwritten)
    assert "\\subsection{Rank 3 \\& depth}" in tex and "\\caption{Error vs m for rank\\_3.}" in tex
    assert "No published value refers to" in tex
    assert "rank $3$, $m$ = $120$ and $200$" in figure_setups(cfg)["arora2019_fig1_rank3"]
