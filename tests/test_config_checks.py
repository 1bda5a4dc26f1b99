"""Config checks of issue 15: figure selection, figure names (issue 27: no paper prefix needed), YAML syntax, configured data files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from implicit_reg.pipeline.config import (
    ConfigValidationError,
    YamlSyntaxError,
    check_local_data,
    check_yaml_syntax,
    configfiles_in_args,
    load_schema,
    select_figures,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def _two_papers(selection=None) -> dict:
    config = {"arora2019": {"figures": {"arora2019_fig1": {}, "arora2019_fig3": {}}},
              "razin2020": {"figures": {"razin2020_fig1": {}, "razin2020_fig2": {}}}}
    if selection is not None:
        config["figures"] = selection
    return config


def test_no_selection_keeps_every_figure() -> None:
    config = select_figures(_two_papers())
    assert list(config["arora2019"]["figures"]) == ["arora2019_fig1", "arora2019_fig3"]
    assert list(config["razin2020"]["figures"]) == ["razin2020_fig1", "razin2020_fig2"]


def test_selection_prunes_both_papers() -> None:
    config = select_figures(_two_papers(["razin2020_fig2", "arora2019_fig3"]))
    assert list(config["arora2019"]["figures"]) == ["arora2019_fig3"]
    assert list(config["razin2020"]["figures"]) == ["razin2020_fig2"]


def test_figure_names_need_no_paper_prefix() -> None:
    config = _two_papers(["erank_vs_measurements", "razin2020_fig2"])
    config["arora2019"]["figures"]["erank_vs_measurements"] = {"notebook": "analysis/erank.py"}
    config = select_figures(config)
    assert list(config["arora2019"]["figures"]) == ["erank_vs_measurements"]
    assert list(config["razin2020"]["figures"]) == ["razin2020_fig2"]


def test_a_name_in_both_papers_is_refused() -> None:
    config = _two_papers()
    config["razin2020"]["figures"]["arora2019_fig1"] = {}
    with pytest.raises(ConfigValidationError, match=r"'arora2019_fig1' is defined in both"):
        select_figures(config)


def test_unknown_selected_figure_lists_the_defined_ones() -> None:
    with pytest.raises(ConfigValidationError, match=r"figures\[0\]: no figure 'arora2019_fig9'.*arora2019_fig1"):
        select_figures(_two_papers(["arora2019_fig9"]))


def test_schema_takes_any_identifier_as_figure_name_and_notebook_paths() -> None:
    sweep = {"task": "completion", "rank": 2, "n_obs": 10, "depth": 2, "init": "gaussian", "init_scale": 0.1,
             "lr": 0.1, "optimizer": "gd", "seeds": 1}
    good = {"arora2019": {"figures": {"erank": {"notebook": "analysis/erank_figure.py", "sweeps": [sweep]},
                                      "arora2019_fig1": {"notebook": "arora2019_dynamics", "sweeps": [sweep]}}},
            "figures": ["erank"]}
    validate_config(good, SCHEMA)
    bad = {"arora2019": {"figures": {"my-fig": {"notebook": "arora2019_dynamics", "sweeps": [sweep]}}}}
    with pytest.raises(ConfigValidationError) as err:
        validate_config(bad, SCHEMA)
    assert "arora2019.figures: 'my-fig'" in str(err.value) and "figure name" in str(err.value)
    with pytest.raises(ConfigValidationError, match=r"figures\[0\]: '1fig'"):
        validate_config({"arora2019": {}, "figures": ["1fig"]}, SCHEMA)
    with pytest.raises(ConfigValidationError, match=r"notebook"):
        validate_config({"arora2019": {"figures": {"f": {"notebook": "analysis/erank.ipynb", "sweeps": [sweep]}}}},
                        SCHEMA)


@pytest.mark.parametrize(
    "text, line",
    [("seed: 7\nengine: {sync_every: 50\nfoo: 1\n", 3),  # unclosed brace, noticed on line 3
     ("seed: 7\narora2019:\n  matrix_size: 20\n   figures: {}\n", 4),
     ("seed: 7\ndata:\n\tmovielens: {}\n", 3)],  # a tab
)
def test_yaml_syntax_error_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    with pytest.raises(YamlSyntaxError, match=rf"^{path}:{line}:\d+: YAML syntax error: "):
        check_yaml_syntax(path)


def test_valid_presets_pass_the_syntax_check() -> None:
    for preset in sorted((ROOT / "config").glob("*.yaml")):
        assert isinstance(check_yaml_syntax(preset), dict)


def test_configfiles_are_found_in_snakemake_arguments() -> None:
    args = ["--configfile", "a.yaml", "b.yaml", "--cores", "2", "--configfile=c.yaml", "target"]
    assert configfiles_in_args(args) == ["a.yaml", "b.yaml", "c.yaml"]


def test_syntax_check_command_names_the_broken_preset(tmp_path: Path) -> None:
    """What scripts/reproduce.sh runs before Snakemake (which would not name the file)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 7\n  engine: 1\n")
    out = subprocess.run([sys.executable, "-m", "implicit_reg.pipeline.config", "--configfile", "config/test.yaml", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src")})
    assert out.returncode != 0 and f"{bad}:2:" in out.stderr


def _data_config(tmp_path: Path, **razin_data) -> dict:
    return {"data": {"movielens": {"path": None}},
            "arora2019": {"figures": {}},
            "razin2020": {"data": {"source": "shared", **razin_data}, "figures": {"razin2020_fig1": {}}}}


def test_empty_razin_data_dir_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match=r"razin2020.data.data_dir: empty \(source: shared\)"):
        check_local_data(_data_config(tmp_path, data_dir=""), tmp_path)


def test_local_movielens_file_needs_its_sha256(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t1\t5\t0\n")
    config = {"data": {"movielens": {"path": "u.data", "file_sha256": None}},
              "arora2019": {"figures": {"arora2019_fig3": {"sweeps": [{"task": "movielens"}]}}}}
    with pytest.raises(ConfigValidationError, match=r"data.movielens.file_sha256: not set.*'u.data'"):
        check_local_data(config, tmp_path)


def test_every_preset_gives_movielens_a_sha256_and_names_no_team_copy() -> None:
    import yaml

    for name in ("config.yaml", "quick.yaml", "test.yaml"):
        text = (ROOT / "config" / name).read_text()
        movielens = yaml.safe_load(text)["data"]["movielens"]
        assert "../shared/data" not in text and "../shared/razin2020" not in text, name
        if name != "quick.yaml":  # quick is merged over config.yaml
            assert len(movielens["file_sha256"]) == 64, name


def test_converted_authors_file_needs_its_sha256(tmp_path: Path) -> None:
    config = {"data": {"movielens": {"path": None, "source": "authors", "file_sha256": None}},
              "arora2019": {"figures": {"arora2019_fig3": {"sweeps": [{"task": "movielens"}]}}}}
    with pytest.raises(ConfigValidationError, match=r"data.movielens.file_sha256: not set, but the u.data converted"):
        check_local_data(config, tmp_path)
    config["data"]["movielens"]["source"] = "grouplens"  # checked as an archive
    check_local_data(config, tmp_path)


def test_slurm_cluster_test_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain pytest never installs Slurm or rewrites /etc/slurm; .ci/run asks for it explicitly."""
    import slurm_cluster

    monkeypatch.delenv(slurm_cluster.ENV_SWITCH, raising=False)
    assert "runs only with IMPLICIT_REG_SLURM_TEST=1" in slurm_cluster.skip_reason()
    monkeypatch.setenv(slurm_cluster.ENV_SWITCH, "0")
    assert slurm_cluster.skip_reason() is not None
    assert "export IMPLICIT_REG_SLURM_TEST=1" in (ROOT / ".ci" / "run").read_text()
