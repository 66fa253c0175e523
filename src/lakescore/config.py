"""The deployment file as frozen dataclasses: parsed once, at the edge, errors naming the key."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from lakescore.columns import BUILT_IN_RULES, FAILED_FILES_SUFFIX
from lakescore.errors import DeploymentError, UsageError
from lakescore.model import check_model_uri

INPUT_FORMATS = ("parquet", "delta")
RULE_ACTIONS = ("quarantine", "warn", "fail")
# Spark SQL types a prediction column can have; spark_udf's spellings map to them.
RESULT_TYPES = ("double", "float", "bigint", "int", "boolean", "string")
_RESULT_TYPE_ALIASES = {"long": "bigint", "integer": "int"}
_MAX_BATCH = 2**31 - 1  # Spark's arrow.maxRecordsPerBatch is an int
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_NAME_LIMIT = 255


@dataclass(frozen=True)
class ModelConfig:
    uri: str
    tracking_uri: str | None = None


@dataclass(frozen=True)
class ExpectConfig:
    """What a complete input looks like; a run on less stops with nothing committed (exit 3)."""

    min_files: int | None = None
    min_rows: int | None = None
    marker: str | None = None
    manifest: str | None = None
    # Unreadable files a run accepts (recorded, their rows in no table); None: any number.
    max_unreadable_files: int | None = None


@dataclass(frozen=True)
class InputConfig:
    format: str
    path: str
    key: str | None = None
    passthrough: tuple[str, ...] = ()
    expect: ExpectConfig = field(default_factory=ExpectConfig)
    table: str | None = None


@dataclass(frozen=True)
class TableConfig:
    """A Delta table by `path`, or by catalog name (`table: schema.name`).

    For a catalog table, `path` is empty until catalog.resolve_tables fills in its location.
    """

    path: str
    redact: tuple[str, ...] = ()
    table: str | None = None
    # Columns Delta keeps min/max statistics for (output only); None: lakescore's default.
    stats_columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    action: str = "quarantine"


@dataclass(frozen=True)
class Limits:
    max_error_fraction: float | None = None
    max_error_rows: int | None = None


@dataclass(frozen=True)
class ScoringConfig:
    batch_size: int = 10_000
    # The prediction's Spark type for a model whose signature has no outputs (spark_udf's
    # result_type); a model with an output signature is typed by it.
    result_type: str = "double"


@dataclass(frozen=True)
class Deployment:
    name: str
    model: ModelConfig
    input: InputConfig
    output: TableConfig
    quarantine: TableConfig
    runs: TableConfig
    rules: tuple[Rule, ...] = ()
    limits: Limits = field(default_factory=Limits)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    source_file: str | None = None

    def with_input_path(self, path: str) -> Deployment:
        """The same deployment reading another input (the `--input` override). An empty one
        is refused, not ignored: `--input "$PARTITION"` with the variable unset would score the
        deployment's own input."""
        if not path.strip():
            raise UsageError(
                "--input is empty: give the input's path, or leave --input out to read the "
                "deployment's input."
            )
        location = str(_resolve(path, Path.cwd(), "--input "))
        return replace(self, input=replace(self.input, path=location, table=None))


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate a deployment file; relative paths resolve against the folder it is
    given in."""
    file = Path(path)
    try:
        if file.is_dir():
            raise DeploymentError(f"Deployment file {file} is a folder; give the YAML file in it.")
        if not file.is_file():
            raise DeploymentError(f"Deployment file {file} does not exist.")
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as exc:  # unreadable by this user, a name too long, a folder not searchable
        raise DeploymentError(
            f"Deployment file {file} cannot be read: {exc.strerror or exc}."
        ) from exc
    except UnicodeDecodeError as exc:
        raise DeploymentError(f"Deployment file {file} is not UTF-8 text.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        problem = f": {problem}" if problem else ""
        raise DeploymentError(f"Deployment file {file} is not valid YAML{where}{problem}.") from exc
    # The folder the file is given in, a symbolic link not followed: YARN's `--files` links each
    # file into the container's folder from a cache folder of its own, so the link's target has
    # none of the files shipped beside it (a `sqlite:` registry, say).
    return parse_deployment(raw, base_dir=Path(os.path.abspath(file)).parent, source=str(file))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last one
    silently, so a second `name:` or `path:` would quietly win. It also reads scalars as
    YAML 1.2 does, where PyYAML follows YAML 1.1: `5e-2` is a number (text without a dot), and
    only true and false are booleans (`on`, `no`, `yes` are text: a key spelled `on` was
    reported as "unknown key limits.True")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: the keys given here override the merged ones
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_deployment(raw: Any, base_dir: Path, source: str = "<deployment>") -> Deployment:
    """Turn the parsed YAML mapping into a Deployment, naming the first wrong key."""
    top = _mapping(raw, "", source)
    _check_keys(
        top,
        required={"name", "model", "input", "output", "quarantine", "runs"},
        optional={"rules", "limits", "scoring"},
        where="",
        source=source,
    )
    name = _string(top["name"], "name", source)
    if not _NAME_PATTERN.match(name) or len(name) > _NAME_LIMIT:
        # It names a folder (the run's staging folder), which a file system limits to 255 bytes.
        raise DeploymentError(
            f"{source}: name {name!r} may hold only letters, digits, '_', '.', '-', "
            f"at most {_NAME_LIMIT} of them, starting with a letter or digit."
        )
    deployment = Deployment(
        name=name,
        model=_model(top["model"], base_dir, source),
        input=_input(top["input"], base_dir, source),
        output=_table(top["output"], "output", base_dir, source),
        quarantine=_table(top["quarantine"], "quarantine", base_dir, source),
        runs=_table(top["runs"], "runs", base_dir, source),
        rules=_rules(top.get("rules"), source),
        limits=_limits(top.get("limits"), source),
        scoring=_scoring(top.get("scoring"), source),
        source_file=source,
    )
    check_locations(deployment)
    return deployment


def check_locations(deployment: Deployment) -> None:
    """Fail when two of the input and the tables share a folder, or one lies inside another.

    Two tables at one location would replace each other's rows of the run (and the run would
    still reconcile); a table inside a Parquet input folder would be read back as input by the
    next run. Catalog tables are checked once their locations are known (path not empty).
    """
    places = {
        "input": deployment.input.path,
        "output": deployment.output.path,
        "quarantine": deployment.quarantine.path,
        "runs": deployment.runs.path,
    }
    if deployment.quarantine.path:
        places["the failed-files table (quarantine + _failed_files)"] = (
            deployment.quarantine.path.rstrip("/") + FAILED_FILES_SUFFIX
        )
    named = [(key, _comparable(path)) for key, path in places.items() if path]
    for index, (key, path) in enumerate(named):
        for other, other_path in named[index + 1 :]:
            if path == other_path:
                raise DeploymentError(
                    f"{deployment.source_file or '<deployment>'}: {key} and {other} are the "
                    f"same location, {path}; give each its own."
                )
            inner, outer = (path, other_path) if len(path) > len(other_path) else (other_path, path)
            if inner.startswith(outer.rstrip("/") + "/"):  # `/` holds every local path
                inside, around = (key, other) if inner == path else (other, key)
                raise DeploymentError(
                    f"{deployment.source_file or '<deployment>'}: {inside} ({inner}) lies "
                    f"inside {around} ({outer}); give each its own location."
                )


def _comparable(location: str) -> str:
    """A location as check_locations compares it, so that no spelling of one folder passes as
    another: `file:///x`, `file:/x`, `/x`, `//x`, `/y/../x` and a symbolic link to `/x` are one
    local folder, and `s3a://b/a//x`, `s3a://b/a/./x` and `s3a://b/a/x` one storage location."""
    parts = _storage_parts(location)
    if parts is None:
        return os.path.realpath("/" + location.removeprefix("file:").lstrip("/"))
    scheme, authority, path = parts
    return f"{scheme}://{authority}{path}".rstrip("/")


def _is_storage_root(location: str) -> bool:
    """`/`, `s3a://bucket` or `abfss://container@account/`: no folder below the storage."""
    parts = _storage_parts(location)
    return (_comparable(location) if parts is None else parts[2]) == "/"


def _storage_parts(location: str) -> tuple[str, str, str] | None:
    """A URI's scheme (one name per storage), authority (the bucket or container@account) and
    normalised path; None for a local path (plain or `file:`)."""
    if location.startswith("file:") or not _URI.match(location):
        return None
    scheme, _, rest = location.partition(":")
    authority = ""
    if rest.startswith("//"):
        authority, _, rest = rest[2:].partition("/")
    path = posixpath.normpath("/" + rest.lstrip("/"))
    return _SAME_STORAGE.get(scheme.lower(), scheme.lower()), authority, path


# Schemes that reach the same storage through another connector (EMR's `s3`, Hadoop's `s3a`).
_SAME_STORAGE = {"s3": "s3a", "s3n": "s3a", "abfs": "abfss", "wasb": "wasbs"}


def _model(raw: Any, base_dir: Path, source: str) -> ModelConfig:
    data = _mapping(raw, "model", source)
    _check_keys(data, {"uri"}, {"tracking_uri"}, "model", source)
    uri = _string(data["uri"], "model.uri", source)
    uri = str(_resolve(uri, base_dir, f"{source}: model.uri "))
    try:
        check_model_uri(uri)
    except DeploymentError as exc:
        raise DeploymentError(f"{source}: model.uri: {exc}") from None
    tracking = data.get("tracking_uri")
    tracking_uri = None
    if tracking is not None:
        given = _string(tracking, "model.tracking_uri", source)
        if given.lower().endswith((".db", ".sqlite", ".sqlite3")) and ":" not in given:
            # MLflow would take it as a folder store, and report the model as not found there.
            raise DeploymentError(
                f"{source}: model.tracking_uri {given!r} is a file name, not a URI: write "
                f"sqlite:///{given} for a SQLite registry (relative to the deployment file)."
            )
        tracking_uri = _resolve_tracking_uri(given, base_dir, f"{source}: model.tracking_uri ")
    return ModelConfig(uri=uri, tracking_uri=tracking_uri)


def _input(raw: Any, base_dir: Path, source: str) -> InputConfig:
    data = _mapping(raw, "input", source)
    optional = {"path", "table", "key", "passthrough", "expect"}
    _check_keys(data, {"format"}, optional, "input", source)
    location, table = _path_or_table(data, "input", base_dir, source)
    fmt = _string(data["format"], "input.format", source).lower()
    if fmt not in INPUT_FORMATS:
        raise DeploymentError(
            f"{source}: input.format is {fmt!r}; expected one of {', '.join(INPUT_FORMATS)}."
        )
    key = data.get("key")
    passthrough = _names(_listed(data, "passthrough"), "input.passthrough", source)
    return InputConfig(
        format=fmt,
        path=location,
        table=table,
        key=_string(key, "input.key", source) if key is not None else None,
        passthrough=tuple(passthrough),
        expect=_expect(data.get("expect"), base_dir, source),
    )


def _expect(raw: Any, base_dir: Path, source: str) -> ExpectConfig:
    if raw is None:
        return ExpectConfig()
    data = _mapping(raw, "input.expect", source)
    counted = ("min_files", "min_rows", "max_unreadable_files")
    _check_keys(data, set(), {*counted, "marker", "manifest"}, "input.expect", source)
    counts = {}
    for key in counted:
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise DeploymentError(f"{source}: input.expect.{key} must be a whole number >= 0.")
        counts[key] = value
    marker = data.get("marker")
    if marker is not None:
        marker = _string(marker, "input.expect.marker", source)
        inside = posixpath.normpath(marker)
        outside = inside in (".", "..") or inside.startswith("../")  # or the folder itself
        if marker.startswith(("/", "~")) or _URI.match(marker) or outside:
            raise DeploymentError(
                f"{source}: input.expect.marker {marker!r} is a path; it names a file inside "
                f"the input's folder (for example _SUCCESS)."
            )
    manifest = data.get("manifest")
    return ExpectConfig(
        min_files=counts["min_files"],
        min_rows=counts["min_rows"],
        max_unreadable_files=counts["max_unreadable_files"],
        marker=marker,
        manifest=(
            str(
                _resolve(
                    _string(manifest, "input.expect.manifest", source),
                    base_dir,
                    f"{source}: input.expect.manifest ",
                )
            )
            if manifest is not None
            else None
        ),
    )


# The keys each table's section takes (TableConfig serves all three).
_TABLE_KEYS = {
    "output": {"path", "table", "stats_columns"},
    "quarantine": {"path", "table", "redact"},
    "runs": {"path", "table"},
}


def deployment_as_dict(deployment: Deployment) -> dict[str, Any]:
    """The resolved deployment as its file's keys (`deployment show --json`), so it can be
    written back: each table's section without the settings that section does not take, and
    no key left unset (a catalog table's path is empty until a session resolves it)."""
    shown = asdict(deployment)
    for section, keys in _TABLE_KEYS.items():
        shown[section] = {key: value for key, value in shown[section].items() if key in keys}
    for section in (*_TABLE_KEYS, "input"):
        if shown[section].get("table"):
            shown[section].pop("path")
    without: dict[str, Any] = _without_unset(shown)
    return without


def _without_unset(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_unset(item) for key, item in value.items() if item is not None}
    return [_without_unset(item) for item in value] if isinstance(value, list) else value


def _table(raw: Any, where: str, base_dir: Path, source: str) -> TableConfig:
    data = _mapping(raw, where, source)
    _check_keys(data, set(), _TABLE_KEYS[where], where, source)
    location, table = _path_or_table(data, where, base_dir, source)
    redact = _names(_listed(data, "redact"), f"{where}.redact", source)
    stats = data.get("stats_columns")
    return TableConfig(
        path=location,
        redact=redact,
        table=table,
        stats_columns=None if stats is None else _names(stats, f"{where}.stats_columns", source),
    )


def _names(raw: Any, where: str, source: str) -> tuple[str, ...]:
    """Column names, stripped as input.key is; an empty one is refused here rather than as a
    column the input lacks, after the run has started."""
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise DeploymentError(f"{source}: {where} must be a list of column names.")
    if not all(c.strip() for c in raw):
        raise DeploymentError(f"{source}: {where} holds an empty column name.")
    names = tuple(dict.fromkeys(c.strip() for c in raw))  # a name given twice counts once
    seen: dict[str, str] = {}
    for name in names:
        # Spark matches column names without regard to case: two spellings are one column
        # given twice, which Delta refuses in its statistics columns when it creates the table.
        if name.lower() in seen:
            raise DeploymentError(
                f"{source}: {where} names column {seen[name.lower()]!r} twice, as {name!r} too."
            )
        seen[name.lower()] = name
    if where.endswith("stats_columns") and len(names) < len(raw):
        raise DeploymentError(f"{source}: {where} names a column twice.")
    return names


def _listed(data: Mapping[str, Any], key: str) -> Any:
    """A list setting as written, an unset or null one as empty: `''` or `false` are mistakes
    for `_names` to refuse, not a way of saying none (an empty `redact` would show the values)."""
    value = data.get(key)
    return [] if value is None else value


_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")


def _path_or_table(
    data: Mapping[str, Any], where: str, base_dir: Path, source: str
) -> tuple[str, str | None]:
    """Exactly one of `path` (resolved against the file's folder) and `table` (schema.name)."""
    data = {key: value for key, value in data.items() if value is not None}  # null: unset
    if "path" not in data and "table" not in data:
        raise DeploymentError(f"{source}: missing required key {where}.path (or {where}.table).")
    if "path" in data and "table" in data:
        raise DeploymentError(f"{source}: {where} takes path or table, not both.")
    if "table" in data:
        table = _string(data["table"], f"{where}.table", source)
        if not _TABLE_NAME.match(table):
            raise DeploymentError(f"{source}: {where}.table {table!r} is not schema.name.")
        return "", table
    given = _string(data["path"], f"{where}.path", source)
    location = str(_resolve(given, base_dir, f"{source}: {where}.path "))
    if where in ("output", "quarantine") and _is_storage_root(location):
        # The staging folder and the failed-files table are named from these tables' folders:
        # beside a bucket's root they would land in another bucket (`s3a://b_failed_files`).
        raise DeploymentError(
            f"{source}: {where}.path {location!r} is the root of its storage; give the table "
            f"a folder inside it (for example {location.rstrip('/')}/{where})."
        )
    return location, None


def _rules(raw: Any, source: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DeploymentError(f"{source}: rules must be a list of {{name, expr, action}}.")
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        where = f"rules[{index}]"
        data = _mapping(item, where, source)
        _check_keys(data, {"name", "expr"}, {"action"}, where, source)
        rule = Rule(
            name=_string(data["name"], f"{where}.name", source),
            expr=_string(data["expr"], f"{where}.expr", source),
            action=_string(data.get("action", "quarantine"), f"{where}.action", source).lower(),
        )
        if rule.name.lower() in BUILT_IN_RULES or ":" in rule.name:
            raise DeploymentError(
                f"{source}: {where}.name {rule.name!r} is taken: a rule may not be named like a "
                f"built-in check ({', '.join(BUILT_IN_RULES)}) nor hold ':' (the run record "
                "counts built-in checks as check:column); its rows would be counted as theirs."
            )
        if rule.action not in RULE_ACTIONS:
            raise DeploymentError(
                f"{source}: {where}.action is {rule.action!r}; "
                f"expected one of {', '.join(RULE_ACTIONS)}."
            )
        if any(r.name == rule.name for r in rules):
            raise DeploymentError(f"{source}: rule name {rule.name!r} appears twice.")
        rules.append(rule)
    return tuple(rules)


def _limits(raw: Any, source: str) -> Limits:
    if raw is None:
        return Limits()
    data = _mapping(raw, "limits", source)
    _check_keys(data, set(), {"max_error_fraction", "max_error_rows"}, "limits", source)
    fraction = data.get("max_error_fraction")
    rows = data.get("max_error_rows")
    if fraction is not None and (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0 <= fraction <= 1
    ):
        raise DeploymentError(
            f"{source}: limits.max_error_fraction must be a number between 0 and 1."
        )
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise DeploymentError(f"{source}: limits.max_error_rows must be a whole number >= 0.")
    return Limits(
        max_error_fraction=float(fraction) if fraction is not None else None,
        max_error_rows=rows,
    )


def _scoring(raw: Any, source: str) -> ScoringConfig:
    if raw is None:
        return ScoringConfig()
    data = _mapping(raw, "scoring", source)
    _check_keys(data, set(), {"batch_size", "result_type"}, "scoring", source)
    size = data.get("batch_size", ScoringConfig.batch_size)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_BATCH:
        raise DeploymentError(
            f"{source}: scoring.batch_size must be a whole number from 1 to {_MAX_BATCH:,}."
        )
    raw_type = data.get("result_type", ScoringConfig.result_type)
    result_type = _RESULT_TYPE_ALIASES.get(str(raw_type).lower(), str(raw_type).lower())
    if result_type not in RESULT_TYPES:
        raise DeploymentError(
            f"{source}: scoring.result_type is {raw_type!r}; expected one of "
            f"{', '.join(RESULT_TYPES)}."
        )
    return ScoringConfig(batch_size=size, result_type=result_type)


def _mapping(raw: Any, where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        what = where or "the file"
        raise DeploymentError(f"{source}: {what} must be a mapping of keys to values.")
    return raw


def _check_keys(
    data: Mapping[str, Any], required: set[str], optional: set[str], where: str, source: str
) -> None:
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in required | optional:
            allowed = ", ".join(sorted(required | optional))
            raise DeploymentError(
                f"{source}: unknown key {prefix}{key!s}; allowed here: {allowed}."
            )
    for key in sorted(required):
        if key not in data:
            raise DeploymentError(f"{source}: missing required key {prefix}{key}.")


def _string(value: Any, key: str, source: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise DeploymentError(
            f"{source}: {key} is read as a number; put it in quotes, as you wrote it, to mean text."
        )
    if not isinstance(value, str) or not value.strip():
        raise DeploymentError(f"{source}: {key} must be a non-empty string.")
    return value.strip()


# YAML 1.2's core schema for booleans and numbers, in place of PyYAML's YAML 1.1 rules, which
# read `010` as octal 8, `1_000` as 1000, `1:30` as 90, a folder named `2026-11-26` as a date,
# and left `5e-2` as text.
_YAML_1_1 = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_1_1]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _yaml_1_2_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """An int as YAML 1.2 reads it: decimal (`010` is ten), `0o` octal or `0x` hexadecimal."""
    text = str(loader.construct_scalar(node))
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _yaml_1_2_int)


def _resolve(path: str, base_dir: Path, where: str = "") -> str | Path:
    """Resolve a relative local path against the deployment file's folder; leave URIs alone.

    A URI is any `scheme:/` of two or more letters, so Databricks' `dbfs:/mnt/…` and Hadoop's
    `file:/data/…` (one slash) stay as written, like `s3a://…` and `models:/…`; a relative
    folder named like `meters-2026-01-01T10:30/raw` is still a path.
    """
    if _URI.match(path):
        return path
    path = path.removeprefix("file:")  # `file:raw` (no slash) is relative, to Hadoop and MLflow
    try:
        candidate = Path(path).expanduser()
    except RuntimeError:  # no such user, or no home folder (a container's arbitrary uid)
        raise DeploymentError(
            f"{where}{path!r}: its `~` names no home folder here; give an absolute path."
        ) from None
    return candidate if candidate.is_absolute() else (base_dir / candidate).resolve()


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def _resolve_tracking_uri(uri: str, base_dir: Path, where: str) -> str:
    """Make a relative `sqlite:///mlflow.db`, or a folder store given as a path (`mlruns`,
    `~/mlruns`), relative to the deployment file, as every other path is: MLflow would take
    them relative to the folder the job happens to run in, and find no model there."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((base_dir / uri[len(prefix) :]).resolve())
    if uri in _SCHEMELESS_URIS or uri.startswith("file:/"):
        return uri
    if uri.startswith("file:"):  # `file:./mlruns` (no slash): relative, as MLflow reads it
        return Path(_resolve(uri, base_dir, where)).as_uri()
    return str(_resolve(uri, base_dir, where))  # a URI (`http://…`) stays as written


_SCHEMELESS_URIS = {"databricks", "databricks-uc"}  # MLflow's names, not folders
