"""Open a figure's notebook in Jupyter with its inputs loaded, and write the edits back.

The render rule runs a figure's notebook (a jupytext ``.py`` file) with papermill,
passing the figure's table paths as parameters. ``snakemake --edit-notebook`` cannot
open it: that works only for rules with a ``notebook:`` directive, and this rule uses a
script so that one rule renders every figure. This module does the equivalent::

    python -m implicit_reg.figures.notebook_edit open <figure> [--configfile config/test.yaml ...]
    jupyter lab results/notebooks/<figure>.edit.ipynb       # iterate; inputs are loaded
    python -m implicit_reg.figures.notebook_edit save <figure>       # edits back into the .py

``open`` plans the configuration as the workflow does (``config/config.yaml`` with each
``--configfile`` merged over it, schema defaults filled), finds the figure's notebook and
tables, and writes ``results/notebooks/<figure>.edit.ipynb``: the notebook with the
render job's parameters injected after its ``parameters`` cell (as papermill does), the
figure going to ``results/notebooks/<figure>.edit.pdf|png`` rather than ``figures/``. It
says which tables are not built yet and the command that builds them. ``save`` writes
the edited cells back to the notebook's ``.py`` (jupytext percent format), without the
injected cell and the outputs, and refuses when the ``.py`` changed since ``open``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import yaml
from papermill.parameterize import parameterize_notebook

from implicit_reg.pipeline.config import merge_config
from implicit_reg.figures.notebooks import notebook_file

#: The workflow's base config (the Snakefile's ``configfile:``); ``--configfile`` files merge over it.
BASE_CONFIG = "config/config.yaml"
#: Where the interactive copies go.
EDIT_DIR = "results/notebooks"
#: Notebook metadata key of what ``open`` wrote (source path and its sha256).
META_KEY = "implicit_reg_edit"


@dataclass
class FigureInputs:
    """What the render job of a figure passes its notebook."""

    figure: str
    paper: str
    notebook: str
    parameters: dict[str, Any]
    #: the tables the notebook reads, by parameter name
    tables: dict[str, str] = field(default_factory=dict)


def load_config(configfiles: list[str], root: Path) -> dict[str, Any]:
    """The workflow's configuration: :data:`BASE_CONFIG` with each file merged over it, in order.

    Mappings merge key by key; anything else, lists included, is replaced
    (:func:`implicit_reg.pipeline.config.merge_config`, Snakemake's rule).
    """
    config: dict[str, Any] = {}
    for path in [BASE_CONFIG, *configfiles]:
        with open(root / path, encoding="utf-8") as fh:
            merge_config(config, yaml.safe_load(fh) or {})
    return config


def figure_inputs(figure: str, configfiles: list[str], root: Path) -> FigureInputs:
    """The notebook, parameters and tables of ``figure`` under a configuration.

    Raises
    ------
    KeyError
        When the configuration has no figure of that name (the defined ones are named).
    """
    from implicit_reg.pipeline.planning import build_plans, validated_config

    config = validated_config(load_config(configfiles, root), root / "workflow" / "schemas", root, select=False)
    config["figures"] = None
    plans = build_plans(config, None)
    for paper, plan in plans.items():
        if figure in plan.figure_names():
            tables = {f"{name}_path": path for name, path in plan.figure_tables(figure).items()}
            stem = Path(EDIT_DIR) / f"{figure}.edit"
            parameters = {**tables, "published_path": "config/published.yaml",
                          "figure_pdf": f"{stem}.pdf", "figure_png": f"{stem}.png",
                          **plan.figure_notebook_params(figure)}
            return FigureInputs(figure, paper, notebook_file(plan.figure_notebook(figure)), parameters, tables)
    defined = [f for plan in plans.values() for f in plan.figure_names()]
    raise KeyError(f"no figure {figure!r} in this configuration (defined: {', '.join(defined)})")


def edit_path(figure: str, root: Path) -> Path:
    """The interactive copy of ``figure``'s notebook."""
    return root / EDIT_DIR / f"{figure}.edit.ipynb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_edit_notebook(inputs: FigureInputs, root: Path) -> Path:
    """Write the notebook with the render job's parameters injected; returns its path."""
    source = root / inputs.notebook
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["papermill"] = {}  # what papermill's loader adds and parameterize fills
    for cell in notebook.cells:
        cell.metadata.setdefault("tags", [])
    notebook = parameterize_notebook(notebook, inputs.parameters, comment="Parameters of the render job")
    notebook.metadata[META_KEY] = {"source": inputs.notebook, "sha256": _digest(source), "figure": inputs.figure}
    out = edit_path(inputs.figure, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out)
    return out


def save_edits(figure: str, root: Path, force: bool = False) -> Path:
    """Write the edited cells of ``figure``'s interactive copy back to its ``.py``; returns the ``.py``.

    Raises
    ------
    FileNotFoundError
        Without an interactive copy (run ``open`` first).
    RuntimeError
        When the ``.py`` changed since ``open`` and ``force`` is not set.
    """
    edited = edit_path(figure, root)
    if not edited.exists():
        raise FileNotFoundError(f"{edited} does not exist: run `python -m implicit_reg.figures.notebook_edit open {figure}`")
    notebook = nbformat.read(edited, as_version=4)
    meta = notebook.metadata.pop(META_KEY, None)
    if not meta:
        raise RuntimeError(f"{edited} was not written by `notebook_edit open`")
    source = root / meta["source"]
    if not force and _digest(source) != meta["sha256"]:
        raise RuntimeError(f"{meta['source']} changed since the notebook was opened; "
                           "merge by hand or pass --force to overwrite it")
    notebook.cells = [c for c in notebook.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if not cell.metadata.get("tags", True):
            del cell.metadata["tags"]
    for key in ("kernelspec", "language_info", "papermill"):
        notebook.metadata.pop(key, None)
    original = source.read_text(encoding="utf-8")
    text = jupytext.writes(notebook, fmt="py:percent")
    # jupytext stamps its version into the header; keep the header the file had
    lines = [line for line in text.splitlines(keepends=True)
             if not (line.startswith(("#       format_version:", "#       jupytext_version:")) and line not in original)]
    source.write_text("".join(lines), encoding="utf-8")
    return source


def _open(args: argparse.Namespace, root: Path) -> int:
    inputs = figure_inputs(args.figure, args.configfile, root)
    out = write_edit_notebook(inputs, root)
    rel = out.relative_to(root)
    print(f"{args.figure} ({inputs.paper}): {inputs.notebook} with the render job's parameters -> {rel}")
    missing = [p for p in inputs.tables.values() if not (root / p).exists()]
    for name, path in inputs.tables.items():
        print(f"  {name} = {path}{'' if (root / path).exists() else '   (not built yet)'}")
    if missing:
        files = " ".join(["--configfile", *args.configfile] if args.configfile else [])
        print(f"build the tables first: snakemake --cores all {files} {' '.join(missing)}".replace("  ", " "))
    print(f"open it: jupyter lab {rel}   (or jupyter notebook; `pip install jupyterlab` if missing)")
    print(f"then write your edits back: python -m implicit_reg.figures.notebook_edit save {args.figure}")
    return 0


def _save(args: argparse.Namespace, root: Path) -> int:
    source = save_edits(args.figure, root, args.force)
    print(f"wrote the edits of {edit_path(args.figure, root).relative_to(root)} back to {source.relative_to(root)}; "
          f"the next `snakemake` re-renders {args.figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``open <figure> [--configfile ...]`` or ``save <figure> [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m implicit_reg.figures.notebook_edit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    opener = sub.add_parser("open", help="write results/notebooks/<figure>.edit.ipynb with the figure's inputs")
    opener.add_argument("figure")
    opener.add_argument("--configfile", nargs="+", default=[], help="config files merged over config/config.yaml")
    saver = sub.add_parser("save", help="write the edits back to the figure's .py notebook")
    saver.add_argument("figure")
    saver.add_argument("--force", action="store_true", help="overwrite a .py that changed since open")
    parser.add_argument("--root", default=".", help="the repository (default: the working directory)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        return _open(args, root) if args.command == "open" else _save(args, root)
    except (KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
