"""The package's layout: no import circle in ``src/`` or ``bench/``, between files or between
subpackages, and no library file over 600 lines.

The import graph is read from the code with :mod:`ast` (every ``import`` and ``from ...
import``, at module level or inside a function: a function-level import still ties the two
files together). ``docs/architecture.md`` draws the subpackages and their order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "implicit_reg"
BENCH = ROOT / "bench"
MAX_LINES = 600
#: The subpackages from the ground up: each may import only those before it (and ``core``).
LAYERS = ("core", "results", "arora2019", "razin2020", "pipeline", "scorecard", "figures", "report")
#: What the top of the package holds besides the subpackages: the public Python API.
TOP_LEVEL = {"__init__.py", "api.py"}


def _module_name(path: Path) -> str:
    if path.is_relative_to(SRC):
        parts = path.relative_to(SRC).with_suffix("").parts
    else:
        parts = ("bench",) + path.relative_to(BENCH).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(files: list[Path], known: set[str]) -> dict[str, set[str]]:
    """Module -> the modules of ``known`` it imports (``from a import b`` counts ``a.b`` if known, else ``a``)."""
    graph: dict[str, set[str]] = {}
    for path in files:
        name = _module_name(path)
        is_bench = name.startswith("bench.")
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for target in targets:
                if is_bench and target.split(".")[0] in {m.split(".")[1] for m in known if m.startswith("bench.")}:
                    target = "bench." + target  # bench programs import each other by bare name
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
                    break
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted(BENCH.glob("*.py"))


def _graph() -> dict[str, set[str]]:
    files = _files()
    return import_graph(files, {_module_name(p) for p in files})


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_function_level_and_bench_imports(tmp_path: Path) -> None:
    graph = _graph()
    # estimate imports the Arora cost model at module level; bench programs import _common by name
    assert "implicit_reg.arora2019.costs" in graph["implicit_reg.pipeline.estimate"]
    assert "bench._common" in graph["bench.bench_batching"]


def test_no_import_circle_between_files() -> None:
    found = circles(_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "implicit_reg" and len(parts) > 2 else None


def test_subpackages_import_only_the_layers_below() -> None:
    wrong = []
    for module, targets in _graph().items():
        here = _subpackage(module)
        if here is None:
            continue
        for target in targets:
            there = _subpackage(target)
            if there is not None and there != here and LAYERS.index(there) > LAYERS.index(here):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "a subpackage imports one above it: " + ", ".join(sorted(wrong))


def test_every_subpackage_has_a_layer_and_the_top_holds_only_the_api() -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS)
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_library_file_over_600_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES
