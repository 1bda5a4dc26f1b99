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


def merge_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` as Snakemake merges config files: recursively for
    mappings, replacing everything else (lists included). Returns ``base``."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value
    return base


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


#: Environment variable naming the team's directory of data copies (``data/ml-100k/u.data``,
#: ``razin2020_data/``): the development and CI machines set it, users need not.
SHARED_DATA_ENV = "IMPLICIT_REG_SHARED_DATA"
SHARED_MOVIELENS = "data/ml-100k/u.data"
SHARED_RAZIN2020 = "razin2020_data"
#: Where the download rules put u.data, by ``data.movielens.source``.
MOVIELENS_DOWNLOADS = {"authors": "resources/ml-100k/authors/u.data",
                       "grouplens": "resources/ml-100k/grouplens/u.data"}


def use_shared_data(config: dict[str, Any], shared_dir: str | Path | None) -> list[str]:
    """Read the data sets that would be downloaded from the team's copies under ``shared_dir`` instead.

    The default configuration names no local copy: MovieLens comes from the authors'
    repository and Razin & Cohen's data sets from theirs, when a job reads them. On the
    development and CI machines ``$IMPLICIT_REG_SHARED_DATA`` names the directory of
    the team's copies, which hold the same bytes (checked by the same sha256), so the
    provenance keys and every number are the same. A locally configured file, the
    GroupLens source, generated tensors and copies absent from ``shared_dir`` are left
    as they are.

    Parameters
    ----------
    config
        Validated configuration (defaults filled); changed in place.
    shared_dir
        The team's data directory, or ``None``/empty to change nothing.

    Returns
    -------
    list of str
        The keys set (for the log).
    """
    if not shared_dir or not str(shared_dir).strip():
        return []
    shared = Path(shared_dir)
    changed = []
    movielens = config.get("data", {}).get("movielens", {})
    if (not movielens.get("path") and movielens.get("source", "authors") == "authors"
            and (shared / SHARED_MOVIELENS).is_file()):
        movielens["path"] = str(shared / SHARED_MOVIELENS)
        changed.append(f"data.movielens.path={movielens['path']}")
    data = (config.get("razin2020") or {}).get("data", {})
    if data.get("source") == "download" and (shared / SHARED_RAZIN2020).is_dir():
        data["source"], data["data_dir"] = "shared", str(shared / SHARED_RAZIN2020)
        changed.append(f"razin2020.data.source=shared, data_dir={data['data_dir']}")
    return changed


def check_local_data(config: dict[str, Any], root: str | Path = ".") -> None:
    """Fail before any job runs when the data settings are incomplete, without reading any data file.

    A data file is needed only by a job that reads it, so whether a configured file
    exists is checked when such a job is planned (:func:`movielens_file`,
    :func:`implicit_reg.core.data_files.require_local_file`), never here: a build
    restored from the archive needs none. Here: a MovieLens u.data, local or converted
    from the authors' file, needs its sha256 (when a sweep has ``task: movielens``), and
    Razin & Cohen's ``source: shared`` needs a ``data_dir``.

    Parameters
    ----------
    config
        Validated configuration (defaults filled).
    root
        Unused; kept for callers that pass the working directory.

    Raises
    ------
    ConfigValidationError
        Naming the key and the way out.
    """
    problems = []
    movielens = config.get("data", {}).get("movielens", {})
    movielens_path = movielens.get("path")
    if _uses_movielens(config) and not movielens.get("file_sha256"):
        if movielens_path:
            problems.append(
                f"data.movielens.file_sha256: not set, but data.movielens.path names {movielens_path!r}; "
                "every configured data file carries its sha256 (sha256sum prints it)"
            )
        elif movielens.get("source", "authors") == "authors":
            problems.append(
                "data.movielens.file_sha256: not set, but the u.data converted from the authors' file "
                "is checked by it (the paper preset's config/config.yaml sets it)"
            )
    razin = config.get("razin2020", {}) or {}
    data = razin.get("data", {}) or {}
    if razin.get("figures") and data.get("source") == "shared" and not str(data.get("data_dir") or "").strip():
        # An empty path is the working directory, which exists: the data would be
        # looked for in the wrong place and fail later, naming only a file.
        problems.append(
            "razin2020.data.data_dir: empty (source: shared); point it at the authors' data "
            "(dmf/<name>.json, tc/<name>.npz) or set razin2020.data.source to download or generated"
        )
    if problems:
        raise ConfigValidationError("invalid configuration:\n  " + "\n  ".join(problems))


def movielens_file(config: dict[str, Any], root: str | Path = ".") -> str:
    """The u.data a MovieLens split reads: the configured local file, else the download rule's output.

    Called when a split job is planned, so a missing local file stops only a build that
    reads it.

    Parameters
    ----------
    config
        Validated configuration.
    root
        The working directory relative paths start from.

    Returns
    -------
    str
        ``data.movielens.path`` when set, else ``MOVIELENS_DOWNLOADS[source]``.

    Raises
    ------
    implicit_reg.core.data_files.DataFileError
        One line naming ``data.movielens.path`` when the configured file does not exist.
    """
    from implicit_reg.core.data_files import require_local_file

    movielens = config["data"]["movielens"]
    path = movielens.get("path")
    if not path:
        return MOVIELENS_DOWNLOADS[movielens.get("source", "authors")]
    return require_local_file(path, "data.movielens.path", "point it at u.data in the authors' order "
                              "or set it to null to fetch that from the authors' repository", root)


def defined_figures(config: dict[str, Any]) -> list[str]:
    """Every figure the configuration defines, Arora et al.'s then Razin & Cohen's (before any selection).

    A figure belongs to the paper whose section defines it; its name need not carry the
    paper's prefix (the papers' own figures do: ``arora2019_fig1``).

    Parameters
    ----------
    config
        Configuration with ``arora2019.figures`` and ``razin2020.figures`` sections.

    Returns
    -------
    list of str
        Figure names in the order of their sections.
    """
    return [name for paper in ("arora2019", "razin2020") for name in ((config.get(paper) or {}).get("figures") or {})]


def select_figures(config: dict[str, Any]) -> dict[str, Any]:
    """Keep only the figures listed in the top-level ``figures`` key (all when it is null).

    Runs before planning, so that unselected figures plan no jobs: a preset naming one
    figure no longer inherits every figure of ``config/config.yaml``. Prunes
    ``arora2019.figures`` and ``razin2020.figures`` in place.

    Parameters
    ----------
    config
        Validated configuration (defaults filled).

    Returns
    -------
    dict
        ``config`` itself.

    Raises
    ------
    ConfigValidationError
        Naming ``figures[i]`` for a name that no section of the configuration defines
        (the defined names are listed), or a name defined in both papers' sections.
    """
    defined = defined_figures(config)
    twice = sorted({name for name in defined if defined.count(name) > 1})
    if twice:
        # a figure's name is its files' and its target's: one figure per name
        raise ConfigValidationError("invalid configuration:\n  " + "\n  ".join(
            f"figure {name!r} is defined in both arora2019.figures and razin2020.figures; rename one"
            for name in twice))
    wanted = config.get("figures")
    if wanted is None:
        return config
    sections = {paper: (config.get(paper) or {}).get("figures") or {} for paper in ("arora2019", "razin2020")}
    problems = []
    for i, name in enumerate(wanted):
        if name not in defined:
            problems.append(f"figures[{i}]: no figure {name!r} in the configuration (defined: {', '.join(defined)})")
    if problems:
        raise ConfigValidationError("invalid configuration:\n  " + "\n  ".join(problems))
    for paper, figures in sections.items():
        if figures:
            config[paper]["figures"] = {k: v for k, v in figures.items() if k in wanted}
    return config


class YamlSyntaxError(ConfigValidationError):
    """A configuration file is not valid YAML; the message names file, line and column."""


def check_yaml_syntax(path: str | Path) -> dict[str, Any]:
    """Parse the YAML file ``path``, naming ``file:line:column`` on a syntax error.

    Snakemake reports a broken config file as "not valid JSON or YAML" without the file
    or the line; this check runs first (``scripts/reproduce.sh``, ``python -m
    implicit_reg.pipeline.config FILE...``).

    Parameters
    ----------
    path
        A configuration file.

    Returns
    -------
    dict
        Its contents (empty for an empty file).

    Raises
    ------
    YamlSyntaxError
        With the 1-based line and column of the problem, and the parser's reason.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        reason = str(err.problem or err.context)
        # The parser notices an unclosed bracket only lines later: name where it opened.
        if err.context and err.context_mark and err.problem_mark and err.context_mark.line != mark.line:
            reason += f" ({err.context} opened at line {err.context_mark.line + 1})"
        raise YamlSyntaxError(f"{where}: YAML syntax error: {reason}") from None
    except yaml.YAMLError as err:
        raise YamlSyntaxError(f"{path}: YAML syntax error: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise YamlSyntaxError(f"{path}:1:1: a configuration file must be a mapping of keys, got {type(data).__name__}")
    return data


def configfiles_in_args(args: list[str]) -> list[str]:
    """The files given to Snakemake's ``--configfile``/``--configfiles`` in ``args``.

    Parameters
    ----------
    args
        Command-line arguments as passed to ``snakemake``.

    Returns
    -------
    list of str
        In order of appearance.
    """
    files, taking = [], False
    for arg in args:
        if arg in ("--configfile", "--configfiles"):
            taking = True
        elif arg.startswith(("--configfile=", "--configfiles=")):
            files.append(arg.split("=", 1)[1])
            taking = False
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
    return files


if __name__ == "__main__":  # pragma: no cover - exercised through scripts/reproduce.sh
    import sys

    try:
        for config_file in ["config/config.yaml", *configfiles_in_args(sys.argv[1:])]:
            check_yaml_syntax(config_file)
    except (YamlSyntaxError, OSError) as error:
        sys.exit(f"error: {error}")
