"""config/README.md is generated from the schemas, and every schema key is described."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from implicit_reg.pipeline.config_docs import (
    README,
    SCHEMAS,
    readme_text,
    render,
    undocumented,
    walk,
)

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "description": "Tiny.",
    "properties": {
        "a": {"type": "integer", "default": 3, "description": "An | integer."},
        "figs": {
            "type": "object",
            "description": "By name.",
            "additionalProperties": {"$ref": "#/$defs/fig"},
        },
    },
    "$defs": {
        "fig": {
            "type": "object",
            "description": "One figure.",
            "properties": {
                "mode": {"type": "string", "enum": ["x", "y"]},
                "rows": {
                    "type": "array",
                    "description": "Rows.",
                    "items": {"type": "object", "properties": {"n": {"type": "integer", "description": "N."}}},
                },
            },
        }
    },
}


def test_walk_resolves_refs_names_and_list_items() -> None:
    keys = {k.path: k for k in walk(TINY, "sec.")}
    assert list(keys) == ["sec.a", "sec.figs", "sec.figs.<name>", "sec.figs.<name>.mode",
                          "sec.figs.<name>.rows", "sec.figs.<name>.rows[].n"]
    assert keys["sec.a"].default == "`3`"
    assert keys["sec.figs.<name>"].description == "One figure."
    assert keys["sec.figs.<name>.mode"].type == "x \\| y"


def test_undocumented_finds_a_key_without_description() -> None:
    assert undocumented(TINY) == ["figs.<name>.mode"]


def test_render_escapes_table_separators() -> None:
    text = render([(TINY, "")])
    assert "An \\| integer." in text
    assert "| `figs.<name>.rows[].n` | integer |  | N. |" in text


@pytest.mark.parametrize(("path", "prefix"), SCHEMAS)
def test_every_schema_key_has_a_description(path: str, prefix: str) -> None:
    schema = yaml.safe_load((REPO / path).read_text(encoding="utf-8"))
    assert undocumented(schema, prefix) == []


def test_config_readme_is_in_sync_with_the_schemas() -> None:
    expected = readme_text(REPO)
    assert (REPO / README).read_text(encoding="utf-8") == expected, (
        "config/README.md is out of date: PYTHONPATH=src .venv/bin/python -m implicit_reg.pipeline.config_docs --write"
    )
    # every key of every preset file is documented
    for preset in ("config.yaml", "quick.yaml", "test.yaml"):
        cfg = yaml.safe_load((REPO / "config" / preset).read_text(encoding="utf-8"))
        for key in cfg:
            assert f"| `{key}` |" in expected, (preset, key)
