"""Configuration validation with defaults and messages that name the key.

The JSON schema (``workflow/schemas/*.schema.yaml``) is the single source of
truth for keys, types and defaults. Snakemake's own ``validate`` prints the
whole configuration on an error; here each error is one line naming the
offending key, what it holds and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


class ConfigValidationError(ValueError):
    """The configuration does not follow the schema; the message lists every problem."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(value))


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def validate_config(config: dict[str, Any], schema: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Fill defaults into ``config`` in place and raise on any violation.

    ``where`` prefixes key paths (for sections validated by their own schema).
    """
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [_describe(err, where) for err in errors]
        raise ConfigValidationError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(lines)))
    return config


def _key_path(parts: list, where: str) -> str:
    text = where
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "<top level>"


def _describe(err: jsonschema.ValidationError, where: str) -> str:
    # For oneOf/anyOf the most specific sub-error is the useful one.
    if err.context:
        deepest = max(err.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(err.absolute_path):
            err = deepest
    key = _key_path(list(err.absolute_path), where)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        return f"{key}: unknown key(s) {', '.join(map(repr, extra))} (allowed here: {allowed})"
    hint = ""
    if isinstance(err.instance, str) and _FLOAT_TEXT.match(err.instance):
        hint = " (YAML reads a number like 1e-3 as text; write 1.0e-3)"
    expected = err.schema.get("description") or _expected(err)
    return f"{key}: {err.instance!r} is not valid: {err.message}{hint}. Expected: {expected}"


def _expected(err: jsonschema.ValidationError) -> str:
    schema = err.schema
    if "oneOf" in schema:
        return " or ".join(_type_text(s) for s in schema["oneOf"])
    return _type_text(schema)


def _type_text(schema: dict[str, Any]) -> str:
    parts = []
    if "type" in schema:
        parts.append(str(schema["type"]))
    for bound, sym in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("maximum", "≤")):
        if bound in schema:
            parts.append(f"{sym} {schema[bound]}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    if schema.get("type") == "array" and "items" in schema:
        parts.append("of " + _type_text(schema["items"]))
    return " ".join(parts) or "see the schema"


def _uses_movielens(config: dict[str, Any]) -> bool:
    figures = config.get("arora2019", {}).get("figures", {}) or {}
    return any(
        sweep.get("task") == "movielens"
        for figure in figures.values()
        for sweep in (figure or {}).get("sweeps", [])
    )


def check_local_data(config: dict[str, Any], root: str | Path = ".") -> None:
    """Fail before any job runs when a configured local data file is missing.

    Only data that the configured figures need are checked: the MovieLens file when a
    sweep has ``task: movielens``, and ``razin2020.data_dir`` when the Razin & Cohen
    figures read the authors' shared copy. The message names the key and the way out.
    Relative paths are taken from ``root`` (Snakemake's working directory).
    """
    root = Path(root)
    problems = []
    movielens_path = config.get("data", {}).get("movielens", {}).get("path")
    if movielens_path and _uses_movielens(config) and not (root / movielens_path).is_file():
        problems.append(
            f"data.movielens.path: file {movielens_path!r} does not exist; point it at u.data "
            "or set it to null to download the GroupLens archive (checked by sha256)"
        )
    razin = config.get("razin2020", {}) or {}
    data = razin.get("data", {}) or {}
    if razin.get("figures") and data.get("source") == "shared":
        data_dir = data.get("data_dir", "")
        if not (root / data_dir).is_dir():
            problems.append(
                f"razin2020.data.data_dir: directory {data_dir!r} does not exist (source: shared); "
                "point it at the authors' data or set razin2020.data.source to download or generated"
            )
    if problems:
        raise ConfigValidationError("invalid configuration:\n  " + "\n  ".join(problems))
