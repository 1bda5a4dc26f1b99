"""Figure notebooks: where a figure's notebook is, and executing it with papermill.

A figure's config names its notebook either by stem (``arora2019_error_vs_init``: the
file ``workflow/notebooks/<stem>.py``) or by a path ending in ``.py`` relative to the
repository (``analysis/my_figure.py``), so a new figure's notebook may live anywhere
(:func:`notebook_file`). Notebooks are jupytext percent-format files.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import papermill
from traitlets.config import Config


#: Where a notebook named by its stem lives.
NOTEBOOK_DIR = "workflow/notebooks"


def notebook_file(notebook: str, notebook_dir: str = NOTEBOOK_DIR) -> str:
    """The file of a figure's notebook as its config names it.

    Parameters
    ----------
    notebook
        A stem (letters, digits, ``_``): ``<notebook_dir>/<stem>.py``; or a path ending
        in ``.py``, relative to the repository (or absolute), used as it is.
    notebook_dir
        The directory of notebooks named by stem.

    Returns
    -------
    str
        The notebook's path.

    Raises
    ------
    ValueError
        For a name that is neither a stem nor a ``.py`` path.
    """
    if notebook.endswith(".py"):
        return notebook
    if not notebook or not all(c.isalnum() or c == "_" for c in notebook):
        raise ValueError(f"notebook {notebook!r}: give a stem (letters, digits, _) of {notebook_dir}/<stem>.py "
                         "or a path ending in .py")
    return f"{notebook_dir}/{notebook}.py"


class NotebookFailed(RuntimeError):
    """A figure notebook raised; the message names the notebook and the cell error."""


def ipc_kernel_config(socket_dir: str | Path) -> Config:
    """Kernel-manager config that connects to the kernel over Unix sockets.

    Over TCP, ipykernel warns at every start that its traffic is unencrypted. The
    figure kernels are local children of the job, so Unix sockets in a private
    directory (reachable by this user only) remove both the open ports and the warning.

    Parameters
    ----------
    socket_dir : str or Path
        An existing directory for the sockets; keep its path short (a Unix socket
        path is limited to about 100 characters).

    Returns
    -------
    traitlets.config.Config
        To pass as ``config=`` to ``papermill.execute_notebook``.
    """
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(socket_dir) / "kernel")}})


def execute_notebook(
    source: str | Path,
    executed: str | Path,
    parameters: dict[str, Any],
    log: logging.Logger | None = None,
    timeout_seconds: int = 1800,
    failed_copy: str | Path | None = None,
) -> None:
    """Convert ``source`` (.py percent format) to ipynb and run it with ``parameters``.

    Parameters
    ----------
    source
        The notebook, jupytext percent format.
    executed
        Where the executed notebook is written (also when it fails).
    parameters
        Papermill parameters.
    log
        Logger for progress messages.
    timeout_seconds
        Per-cell limit.
    failed_copy
        Where a copy of a *failed* executed notebook is kept. Snakemake deletes a
        failed job's outputs, ``executed`` included, so the copy the error message
        points to must live elsewhere (the adapters use the rule's log directory).
        A stale copy from an earlier failure is removed when the notebook succeeds.

    Raises
    ------
    NotebookFailed
        Naming the notebook, the cell and its error, and the surviving executed copy.
    """
    log = log or logging.getLogger(__name__)
    source, executed = Path(source), Path(executed)
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    executed.parent.mkdir(parents=True, exist_ok=True)
    prepared = executed.with_name(executed.stem + ".input.ipynb")
    nbformat.write(notebook, prepared)
    log.info("executing %s with %s", source, parameters)
    try:
        with tempfile.TemporaryDirectory(prefix="nbk-") as sockets:
            papermill.execute_notebook(
                str(prepared), str(executed), parameters=parameters, kernel_name="python3",
                progress_bar=False, log_output=True, execution_timeout=timeout_seconds,
                cwd=os.getcwd(), config=ipc_kernel_config(sockets),
            )
    except papermill.PapermillExecutionError as err:
        kept = executed
        if failed_copy is not None and executed.exists():
            kept = Path(failed_copy)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, kept)
        raise NotebookFailed(
            f"notebook {source} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
            f"(executed copy with the error: {kept})"
        ) from None
    finally:
        prepared.unlink(missing_ok=True)
    if failed_copy is not None:
        Path(failed_copy).unlink(missing_ok=True)
