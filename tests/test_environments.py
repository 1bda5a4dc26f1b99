"""Dependencies: pyproject, requirements and conda environments agree, and each pin is used.

The conda environments (``--sdm conda``) must carry every third-party module that a
rule's script, the library modules it imports and the figure notebooks import: a
missing optional one (numba) silently selects a ~1000x slower path instead of failing.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions as _packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "implicit_reg"
SCRIPTS = ROOT / "workflow" / "scripts"
NOTEBOOKS = ROOT / "workflow" / "notebooks"
#: Pinned, used at run time, never imported by this project's code (why, per package).
USED_WITHOUT_IMPORT = {
    "ipykernel": "the kernel papermill starts for every figure notebook",
    "nbclient": "papermill's notebook executor",
    "snakefmt": "the formatter run by CI and tests/test_workflow.py as a command",
}


@cache
def packages_distributions() -> dict[str, list[str]]:
    """Module -> distributions; cached, as it reads the metadata of every installed package."""
    return _packages_distributions()


def _pins(path: Path) -> dict[str, str]:
    """Distribution (normalised) -> full pin of a requirements file, following ``-r``."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pins.update(_pins(path.parent / line[3:].strip()))
        elif line:
            pins[_norm(line.split("==")[0])] = line
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_pins(env: str) -> dict[str, str]:
    spec = yaml.safe_load((ROOT / "envs" / f"{env}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_norm(p.split("==")[0]): p for p in pip}


def _imports(path: Path) -> set[str]:
    """Absolute imports of a Python file, as dotted names (``from a import b`` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def third_party_imports(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level third-party modules imported by ``path`` and the project modules it imports."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    found: set[str] = set()
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "implicit_reg":
            # implicit_reg.a.b is a module file a/b.py or a package a/b/__init__.py
            base = LIB.joinpath(*parts[1:])
            for module in (base.with_suffix(".py"), base / "__init__.py"):
                if module.exists():
                    found |= third_party_imports(module, seen)
        elif (SCRIPTS / f"{parts[0]}.py").exists():
            found |= third_party_imports(SCRIPTS / f"{parts[0]}.py", seen)
        elif parts[0] not in sys.stdlib_module_names and parts[0] != "__future__":
            found.add(parts[0])
    return found


def _rule_jobs() -> list[tuple[str, str, list[Path]]]:
    """(rule, conda env, Python files the job runs) for every rule with a script."""
    jobs = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            rule = re.match(r"rule (\w+):", block)
            env = re.search(r'conda:\s*\n\s*f"\{ENVS\}/(\w+)\.yaml"', block)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"', block)
            if rule and env and script:
                files = [SCRIPTS / script.group(1)]
                if "render" in rule.group(1):  # the job executes the figure notebooks
                    files += sorted(NOTEBOOKS.glob("*.py"))
                jobs.append((rule.group(1), env.group(1), files))
    return jobs


def _distribution(module: str) -> str:
    dists = packages_distributions().get(module)
    assert dists, f"module {module} is imported but not installed"
    return _norm(dists[0])


def test_pyproject_declares_the_runtime_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _pins(ROOT / "requirements.txt")
    assert sorted(project["dependencies"]) == sorted(runtime.values())
    dev = {k: v for k, v in _pins(ROOT / "requirements-dev.txt").items() if k not in runtime}
    assert sorted(project["optional-dependencies"]["dev"]) == sorted(dev.values())
    assert sorted(project["optional-dependencies"]["slurm"]) == sorted(_pins(ROOT / "requirements-slurm.txt").values())


@pytest.mark.parametrize("env", ["compute", "figures"])
def test_conda_envs_pin_the_versions_of_requirements(env: str) -> None:
    runtime = _pins(ROOT / "requirements.txt")
    for name, pin in _env_pins(env).items():
        assert runtime.get(name) == pin, f"envs/{env}.yaml: {pin} but requirements.txt: {runtime.get(name)}"


def test_rule_jobs_are_found() -> None:
    rules = {rule for rule, _, _ in _rule_jobs()}
    assert {"train_factorization_batch", "render_figure", "razin2020_dmf_batch", "report_fragments"} <= rules


@pytest.mark.parametrize(("rule", "env", "files"), _rule_jobs(), ids=[j[0] for j in _rule_jobs()])
def test_conda_env_carries_every_module_its_rule_imports(rule: str, env: str, files: list[Path]) -> None:
    carried = set(_env_pins(env))
    needed = {_distribution(m) for f in files for m in third_party_imports(f)}
    assert needed <= carried, f"{rule}: envs/{env}.yaml lacks {sorted(needed - carried)}"


def test_numba_reaches_the_2x2_jobs() -> None:
    """The case that made the conda path silently slow: two_by_two imports numba optionally."""
    assert "numba" in third_party_imports(SCRIPTS / "razin2020_dmf_batch.py")


def test_every_pinned_package_is_imported_somewhere() -> None:
    pins = _pins(ROOT / "requirements-dev.txt")
    files = [ROOT / "Snakefile", *ROOT.glob("workflow/rules/*.smk"), *LIB.rglob("*.py"), *SCRIPTS.glob("*.py"),
             *NOTEBOOKS.glob("*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py")]
    imported = set()
    for f in files:
        text = f.read_text()
        imported |= set(re.findall(r"^\s*(?:from|import)\s+(\w+)", text, flags=re.M))
    imported_dists = {_norm(d) for m in imported for d in packages_distributions().get(m, [])}
    unused = set(pins) - imported_dists - set(USED_WITHOUT_IMPORT)
    assert not unused, f"pinned but never imported: {sorted(unused)}"
    assert "tqdm" not in pins


@pytest.mark.parametrize("env", sorted({env for _, env, _ in _rule_jobs()}))
def test_conda_env_installs_the_project(env: str) -> None:
    """Script rules import implicit_reg as installed (no sys.path code): their env must install it.

    Through the env's post-deploy script, which Snakemake runs in the new environment from the
    working directory: a relative pip entry in the env file would be resolved from the copy
    Snakemake makes of the file under .snakemake/conda/.
    """
    script = ROOT / "envs" / f"{env}.post-deploy.sh"
    assert script.is_file(), f"envs/{env}.yaml: no {script.name} installing the project"
    commands = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert any(re.search(r"pip install .*--no-deps.* -e \.(\s|$)", line) for line in commands)


def test_no_import_path_code() -> None:
    """The package is installed (scripts/setup.sh, the conda envs): nothing edits sys.path or PYTHONPATH."""
    files = [*LIB.rglob("*.py"), *SCRIPTS.glob("*.py"), *NOTEBOOKS.glob("*.py"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("workflow/rules/*.smk"), ROOT / "Snakefile", ROOT / "tests" / "conftest.py"]
    offenders = [str(f.relative_to(ROOT)) for f in files
                 if re.search(r"sys\.path\.(insert|append|extend)|environ\[\"PYTHONPATH\"\]", f.read_text())]
    assert not offenders, f"import-path code in {offenders}"
