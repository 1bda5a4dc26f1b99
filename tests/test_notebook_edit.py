"""Opening a figure's notebook with its inputs loaded, writing edits back; the recipe's overlay (issue 27 item 3)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from implicit_reg.figures import notebook_edit as ne
from implicit_reg.figures.notebooks import notebook_file

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "docs" / "adding-a-figure.md"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A repository with the configs, schemas and notebooks (what planning and the notebooks need)."""
    for part in ("config", "workflow/schemas", "workflow/notebooks"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def recipe_overlay(root: Path) -> Path:
    """The first YAML block of docs/adding-a-figure.md, with its notebook copied from the template."""
    overlay = re.findall(r"```yaml\n(.*?)```", RECIPE.read_text(encoding="utf-8"), re.S)[0]
    (root / "my_figure.yaml").write_text(overlay)
    (root / "analysis").mkdir()
    shutil.copy(root / "workflow/notebooks/template_figure.py", root / "analysis/erank_vs_measurements.py")
    return root / "my_figure.yaml"


def test_notebook_file_takes_a_stem_or_a_path():
    assert notebook_file("arora2019_dynamics") == "workflow/notebooks/arora2019_dynamics.py"
    assert notebook_file("analysis/my_fig.py") == "analysis/my_fig.py"
    with pytest.raises(ValueError, match="stem"):
        notebook_file("analysis/my_fig.ipynb")


def test_open_injects_the_render_jobs_parameters(root: Path):
    inputs = ne.figure_inputs("arora2019_fig1", ["config/test.yaml"], root)
    assert inputs.paper == "arora2019" and inputs.notebook == "workflow/notebooks/arora2019_error_vs_observations.py"
    out = ne.write_edit_notebook(inputs, root)
    nb = nbformat.read(out, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["injected-parameters"]
    injected = nb.cells[at + 1].source
    assert 'runs_path = "results/arora2019_fig1/runs.parquet"' in injected
    assert 'published_path = "config/published.yaml"' in injected
    assert 'figure_pdf = "results/notebooks/arora2019_fig1.edit.pdf"' in injected  # never figures/
    assert 'y_scale = "linear"' in injected  # the figure's notebook_params (config.yaml)
    with pytest.raises(KeyError, match="no figure 'nofig'.*arora2019_fig1"):
        ne.figure_inputs("nofig", ["config/test.yaml"], root)


def test_save_round_trip_keeps_every_notebook_byte_for_byte(root: Path):
    for figure in ("arora2019_fig1", "arora2019_n1", "razin2020_fig1", "razin2020_fig2"):
        inputs = ne.figure_inputs(figure, ["config/test.yaml"], root)
        before = (root / inputs.notebook).read_bytes()
        ne.write_edit_notebook(inputs, root)
        ne.save_edits(figure, root)
        assert (root / inputs.notebook).read_bytes() == before, figure


def test_save_writes_edits_back_without_the_injected_cell(root: Path):
    inputs = ne.figure_inputs("arora2019_n1", ["config/test.yaml"], root)
    out = ne.write_edit_notebook(inputs, root)
    nb = nbformat.read(out, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "mean_std_by" in c.source)
    code.source += "\nprint('edited in jupyter')"
    code.outputs = [nbformat.v4.new_output("stream", text="output\n")]
    nbformat.write(nb, out)
    ne.save_edits("arora2019_n1", root)
    text = (root / inputs.notebook).read_text()
    assert "print('edited in jupyter')" in text
    assert "injected-parameters" not in text and "Parameters of the render job" not in text
    assert "output\n" not in text and "jupytext_version" not in text
    assert len(jupytext.reads(text, fmt="py:percent").cells) == len(nb.cells) - 1


def test_save_refuses_a_notebook_changed_since_open(root: Path):
    inputs = ne.figure_inputs("arora2019_fig1", ["config/test.yaml"], root)
    ne.write_edit_notebook(inputs, root)
    (root / inputs.notebook).write_text((root / inputs.notebook).read_text() + "\n# changed elsewhere\n")
    with pytest.raises(RuntimeError, match="changed since"):
        ne.save_edits("arora2019_fig1", root)
    ne.save_edits("arora2019_fig1", root, force=True)
    assert "changed elsewhere" not in (root / inputs.notebook).read_text()
    assert ne.main(["--root", str(root), "save", "arora2019_fig2"]) == 1  # never opened: one line, no traceback


def test_recipe_overlay_plans_a_new_figure_without_prefix_and_with_a_notebook_path(root: Path):
    overlay = recipe_overlay(root)
    inputs = ne.figure_inputs("erank_vs_measurements", ["config/test.yaml", str(overlay)], root)
    assert inputs.paper == "arora2019" and inputs.notebook == "analysis/erank_vs_measurements.py"
    assert inputs.tables == {"runs_path": "results/erank_vs_measurements/runs.parquet",
                             "trajectories_path": "results/erank_vs_measurements/trajectories.parquet"}
    assert inputs.parameters["y"] == "effective_rank"
    # the template's parameters cell has every notebook_params key of the recipe
    template = jupytext.read(root / "analysis/erank_vs_measurements.py")
    params = next(c.source for c in template.cells if "parameters" in c.metadata.get("tags", []))
    for key in ("x", "y", "x_label", "y_label", "runs_path", "trajectories_path", "published_path",
                "figure_pdf", "figure_png"):
        assert re.search(rf"^{key} = ", params, re.M), key


def test_sweep_overrides_change_one_key_of_every_sweep(root: Path):
    from implicit_reg.pipeline.config import ConfigValidationError
    from implicit_reg.pipeline.planning import validated_config

    block = re.findall(r"```yaml\n(.*?)```", RECIPE.read_text(encoding="utf-8"), re.S)[1]
    (root / "fig1.yaml").write_text(block)
    config = validated_config(ne.load_config(["config/test.yaml", str(root / "fig1.yaml")], root),
                              root / "workflow" / "schemas", root, select=False)
    sweeps = config["arora2019"]["figures"]["arora2019_fig1"]["sweeps"]
    assert len(sweeps) == 2 and all(s["depth"] == [2, 3, 4, 5] and s["rank"] == 3 for s in sweeps)
    assert sweeps[0]["n_obs"] == [120, 200]  # the rest of each sweep is the preset's
    (root / "bad.yaml").write_text("arora2019: {figures: {arora2019_fig1: {sweep_overrides: {depth: 0}}}}\n")
    with pytest.raises(ConfigValidationError, match="arora2019_fig1.sweeps"):
        validated_config(ne.load_config(["config/test.yaml", str(root / "bad.yaml")], root),
                         root / "workflow" / "schemas", root, select=False)
