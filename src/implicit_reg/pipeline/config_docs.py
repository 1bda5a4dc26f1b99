"""``config/README.md``, generated from the config schemas.

The schemas (``workflow/schemas/*.schema.yaml``) are the single source of truth for
keys, types, defaults and descriptions; the README is rendered from them so the
two cannot drift apart (``tests/test_config_docs.py`` checks it). Regenerate with::

    PYTHONPATH=src .venv/bin/python -m implicit_reg.pipeline.config_docs --write
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO = Path(__file__).resolve().parents[3]
#: (schema file, key prefix) in the order the README lists them.
SCHEMAS = (
    ("workflow/schemas/config.schema.yaml", ""),
    ("workflow/schemas/razin2020.schema.yaml", "razin2020."),
)
README = "config/README.md"

_HEADER = """\
# Configuration

<!-- Generated from workflow/schemas/*.schema.yaml by
     `PYTHONPATH=src .venv/bin/python -m implicit_reg.pipeline.config_docs --write`; do not edit. -->

The workflow always reads `config/config.yaml` (the papers' settings, named by the
Snakefile's `configfile:`), then each `--configfile` in the order given, e.g.
`--configfile config/quick.yaml` (every figure, reduced grids) or `--configfile
config/test.yaml` (tiny, used by the tests). Every key is checked against the schema
before any job runs, and an unknown key (usually a typo) is an error naming it.

How a file given with `--configfile` (an *overlay*) combines with what came before,
as Snakemake merges config files:

- a mapping merges key by key: an overlay that sets `arora2019.matrix_size` keeps
  every other key of `arora2019`, and a figure it names is added to, or merged into,
  the figures already there;
- anything else replaces the value whole, **lists included**: an overlay's `sweeps:`
  of a figure is that figure's whole list of sweeps, and `n_obs: [100]` replaces the
  grid. To change one key of every sweep of a figure without restating them, set the
  figure's `sweep_overrides` (e.g. `sweep_overrides: {depth: [2, 3, 4, 5], rank: 3}`);
- a key that no file sets takes the default in the table below.

So the defaults below are what is left when `config/config.yaml` does not set a key;
most keys that matter are set there, at paper scale. An overlay of two lines over the
default config inherits the paper-scale figures: to start from a small preset, give it
first, `--configfile config/test.yaml my.yaml` (docs/adding-a-figure.md).

`config/published.yaml` is not a workflow config: it lists the numbers quoted in the
papers, which the report compares with the reproduced ones.

In key paths, `<name>` stands for a name you choose (a figure, a data set) and `[]` for
the items of a list.
"""


@dataclass(frozen=True)
class KeyDoc:
    """One documented config key."""

    path: str
    type: str
    default: str
    description: str


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` merged in (the node's own keys win, e.g. its description)."""
    ref = node.get("$ref")
    if not ref:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _type_text(node: dict[str, Any], root: dict[str, Any]) -> str:
    node = _resolve(node, root)
    if "enum" in node:
        return " \\| ".join(json.dumps(v) if v is None else str(v) for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_type_text(n, root) for n in node["oneOf"])
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {_type_text(node['items'], root)}"
    return kind


def _default_text(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    return f"`{json.dumps(node['default'], separators=(', ', ': '))}`"


def walk(schema: dict[str, Any], prefix: str = "") -> Iterator[KeyDoc]:
    """Every key of ``schema``, depth first, as :class:`KeyDoc` (description ``""`` when missing).

    Parameters
    ----------
    schema : dict
        A JSON schema (draft 2020-12 subset: properties, additionalProperties, items,
        local ``$ref``, oneOf, enum).
    prefix : str
        Prepended to every key path (e.g. ``"razin2020."``).

    Yields
    ------
    KeyDoc
        The key's dotted path, type, default and description.
    """
    yield from _walk(schema, schema, prefix.rstrip("."))


def _walk(node: dict[str, Any], root: dict[str, Any], path: str) -> Iterator[KeyDoc]:
    node = _resolve(node, root)
    for name, sub in node.get("properties", {}).items():
        yield from _key(sub, root, f"{path}.{name}" if path else name)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _key(extra, root, f"{path}.<name>")
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict):
        items = _resolve(items, root)
        if items.get("type") == "object":
            yield from _walk(items, root, f"{path}[]")


def _key(sub: dict[str, Any], root: dict[str, Any], path: str) -> Iterator[KeyDoc]:
    resolved = _resolve(sub, root)
    description = " ".join(str(resolved.get("description", "")).split())
    yield KeyDoc(path, _type_text(sub, root), _default_text(resolved), description)
    yield from _walk(resolved, root, path)


def undocumented(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Key paths of ``schema`` without a description."""
    return [key.path for key in walk(schema, prefix) if not key.description]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if "\\|" not in text else text


def render(schemas: list[tuple[dict[str, Any], str]]) -> str:
    """The README text for ``(schema, prefix)`` pairs: one table per top-level section.

    Parameters
    ----------
    schemas : list of (dict, str)
        Schemas and the key prefix of each.

    Returns
    -------
    str
        Markdown, ending in a newline.
    """
    out = [_HEADER]
    for schema, prefix in schemas:
        section = prefix.rstrip(".") or "top level"
        intro = " ".join(str(schema.get("description", "")).split())
        out.append(f"\n## {'`' + section + '`' if prefix else 'Top level'}\n\n{intro}\n\n")
        out.append("| key | type | default | description |\n|---|---|---|---|\n")
        for key in walk(schema, prefix):
            out.append(f"| `{key.path}` | {_cell(key.type)} | {_cell(key.default)} | {_cell(key.description)} |\n")
    return "".join(out)


def readme_text(repo: Path = REPO) -> str:
    """The README rendered from this repository's schemas."""
    schemas = [(yaml.safe_load((repo / path).read_text(encoding="utf-8")), prefix) for path, prefix in SCHEMAS]
    return render(schemas)


def main(argv: list[str] | None = None) -> int:
    """Print the README, ``--write`` it to config/README.md, or ``--check`` that it is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {README}")
    group.add_argument("--check", action="store_true", help=f"exit 1 when {README} is out of date")
    args = parser.parse_args(argv)
    text = readme_text()
    target = REPO / README
    if args.write:
        target.write_text(text, encoding="utf-8")
    elif args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{README} is out of date: run python -m implicit_reg.pipeline.config_docs --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
