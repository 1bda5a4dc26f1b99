"""The figure notebooks' kernel: local Unix sockets, no ipykernel transport warning."""

from __future__ import annotations

import json
from pathlib import Path

from implicit_reg.figures.notebooks import execute_notebook, ipc_kernel_config

NOTEBOOK = """# %% tags=["parameters"]
x = 1

# %%
print(x + 1)
"""


def test_ipc_kernel_config_puts_the_sockets_in_the_given_directory(tmp_path: Path) -> None:
    config = ipc_kernel_config(tmp_path)
    assert config.KernelManager.transport == "ipc"
    assert Path(config.KernelManager.ip).parent == tmp_path


def test_a_notebook_runs_without_kernel_warnings(tmp_path: Path, capfd) -> None:
    source = tmp_path / "nb.py"
    source.write_text(NOTEBOOK)
    executed = tmp_path / "out" / "nb.ipynb"
    execute_notebook(source, executed, {"x": 41})
    cells = json.loads(executed.read_text())["cells"]
    assert "".join(cells[-1]["outputs"][0]["text"]) == "42\n"
    captured = capfd.readouterr()
    # the kernel is a child process writing to the inherited stderr: capfd sees it
    assert "without encryption" not in captured.err + captured.out
    assert "TCP" not in captured.err + captured.out
