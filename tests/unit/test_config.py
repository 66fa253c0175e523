"""Unit tests for the deployment file: parsing, path resolution and errors that name the key."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakescore.config import (
    Deployment,
    InputConfig,
    Limits,
    ModelConfig,
    Rule,
    ScoringConfig,
    TableConfig,
    deployment_as_dict,
    load_deployment,
    parse_deployment,
)
from lakescore.errors import EXIT_USAGE, DeploymentError

FULL_YAML = textwrap.dedent(
    """\
    name: meter-risk
    model:
      uri: models:/meter_risk@champion
      tracking_uri: sqlite:///mlflow.db
    input:
      format: parquet
      path: raw/meters
      key: meter_id
      passthrough: [meter_id, region]
    output:     {path: scored/meter_risk}
    quarantine: {path: scored/meter_risk_quarantine}
    runs:       {path: scored/lakescore_runs}
    rules:
      - {name: usage_non_negative, expr: "kwh_7d >= 0", action: quarantine}
      - {name: region_known, expr: "region IS NOT NULL", action: warn}
      - {name: id_present, expr: "meter_id IS NOT NULL"}
    limits:
      max_error_fraction: 0.05
      max_error_rows: null
    scoring:
      batch_size: 10000
    """
)


def minimal() -> dict[str, Any]:
    """The smallest valid deployment mapping; tests change one thing at a time."""
    return {
        "name": "job",
        "model": {"uri": "models:/risk@champion"},
        "input": {"format": "parquet", "path": "raw"},
        "output": {"path": "out"},
        "quarantine": {"path": "quarantine"},
        "runs": {"path": "runs"},
    }


def write(folder: Path, raw: Any, name: str = "deployment.yaml") -> Path:
    """Write a mapping (or raw text) as a deployment file and return its path."""
    file = folder / name
    file.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return file


def parse_error(raw: Any, tmp_path: Path) -> DeploymentError:
    """Parse `raw`, expecting a DeploymentError; return it for the caller's checks."""
    with pytest.raises(DeploymentError) as info:
        parse_deployment(raw, base_dir=tmp_path, source="dep.yaml")
    assert info.value.exit_code == EXIT_USAGE
    return info.value


# --- a valid file -----------------------------------------------------------------------------


def test_full_file_gives_frozen_dataclasses(tmp_path: Path) -> None:
    """Every key of DESIGN.md's example lands in the right field, paths resolved."""
    file = write(tmp_path, FULL_YAML)
    base = tmp_path.resolve()

    deployment = load_deployment(file)

    assert deployment == Deployment(
        name="meter-risk",
        model=ModelConfig(
            uri="models:/meter_risk@champion",
            tracking_uri=f"sqlite:///{base / 'mlflow.db'}",
        ),
        input=InputConfig(
            format="parquet",
            path=str(base / "raw" / "meters"),
            key="meter_id",
            passthrough=("meter_id", "region"),
        ),
        output=TableConfig(path=str(base / "scored" / "meter_risk")),
        quarantine=TableConfig(path=str(base / "scored" / "meter_risk_quarantine")),
        runs=TableConfig(path=str(base / "scored" / "lakescore_runs")),
        rules=(
            Rule("usage_non_negative", "kwh_7d >= 0", "quarantine"),
            Rule("region_known", "region IS NOT NULL", "warn"),
            Rule("id_present", "meter_id IS NOT NULL", "quarantine"),
        ),
        limits=Limits(max_error_fraction=0.05, max_error_rows=None),
        scoring=ScoringConfig(batch_size=10000),
        source_file=str(file),
    )
    assert isinstance(deployment.input.passthrough, tuple)
    assert isinstance(deployment.rules, tuple)


def test_the_shown_deployment_reads_back_as_the_same_deployment(tmp_path: Path) -> None:
    """`deployment show --json` gives the file's own keys: each table's section only the
    settings it takes (output.redact or runs.stats_columns would be refused as unknown)."""
    text = FULL_YAML.replace(
        "output:     {path: scored/meter_risk}",
        "output:     {path: scored/meter_risk, stats_columns: [_run_id]}",
    ).replace(
        "quarantine: {path: scored/meter_risk_quarantine}",
        "quarantine: {path: scored/meter_risk_quarantine, redact: [meter_id]}",
    )
    with_tables = text.replace("runs:       {path: scored/lakescore_runs}", "runs: {table: s.runs}")
    for deployment in (load_deployment(write(tmp_path, t)) for t in (text, with_tables)):
        shown = json.loads(json.dumps(deployment_as_dict(deployment)))
        source = shown.pop("source_file")  # where the file was read from, not a key of it

        again = parse_deployment(shown, base_dir=tmp_path, source="shown")

        assert dataclasses.replace(again, source_file=source) == deployment


@pytest.mark.parametrize(
    ("obj", "attr"),
    [
        (lambda d: d, "name"),
        (lambda d: d.model, "uri"),
        (lambda d: d.input, "path"),
        (lambda d: d.output, "path"),
        (lambda d: d.rules[0], "action"),
        (lambda d: d.limits, "max_error_fraction"),
        (lambda d: d.scoring, "batch_size"),
    ],
)
def test_parsed_deployment_is_frozen(tmp_path: Path, obj: Any, attr: str) -> None:
    """No part of a parsed deployment can be changed after parsing."""
    deployment = load_deployment(write(tmp_path, FULL_YAML))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj(deployment), attr, "changed")


def test_optional_sections_take_defaults(tmp_path: Path) -> None:
    """Without rules, limits, scoring, key and tracking URI the defaults apply."""
    deployment = parse_deployment(minimal(), base_dir=tmp_path)

    assert deployment.rules == ()
    assert deployment.limits == Limits(max_error_fraction=None, max_error_rows=None)
    assert deployment.scoring == ScoringConfig(batch_size=10_000)
    assert deployment.model.tracking_uri is None
    assert deployment.input.key is None
    assert deployment.input.passthrough == ()


def test_input_format_is_case_insensitive(tmp_path: Path) -> None:
    """`format: Delta` is read as delta."""
    raw = minimal()
    raw["input"]["format"] = "Delta"
    assert parse_deployment(raw, base_dir=tmp_path).input.format == "delta"


# --- path resolution --------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative table, input, model and sqlite paths resolve against the file, not the cwd."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    raw = minimal()
    raw["model"] = {"uri": "models/risk", "tracking_uri": "sqlite:///mlflow.db"}
    raw["input"]["path"] = "data/raw"
    raw["output"]["path"] = "../tables/out"
    file = write(folder, raw)

    deployment = load_deployment(Path("..") / "jobs" / file.name)

    base = folder.resolve()
    assert deployment.input.path == str(base / "data" / "raw")
    assert deployment.output.path == str((base / ".." / "tables" / "out").resolve())
    assert deployment.quarantine.path == str(base / "quarantine")
    assert deployment.runs.path == str(base / "runs")
    assert deployment.model.uri == str(base / "models" / "risk")
    assert deployment.model.tracking_uri == f"sqlite:///{base / 'mlflow.db'}"


def test_paths_resolve_against_the_folder_of_a_linked_deployment_file(tmp_path: Path) -> None:
    """YARN's `--files` gives each shipped file a cache folder of its own and links it into the
    container's folder: the files shipped beside the deployment are beside the link, not beside
    its target."""
    cache = tmp_path / "filecache"
    for number, name in enumerate(["deployment.yaml", "mlflow.db"]):
        (cache / str(number)).mkdir(parents=True)
        (tmp_path / name).symlink_to(cache / str(number) / name)
    raw = minimal()
    raw["model"] = {"uri": "models:/risk@champion", "tracking_uri": "sqlite:///mlflow.db"}
    (cache / "0" / "deployment.yaml").write_text(yaml.safe_dump(raw))
    (cache / "1" / "mlflow.db").write_bytes(b"")

    deployment = load_deployment(tmp_path / "deployment.yaml")

    assert deployment.output.path == str(tmp_path / "out")
    # The registry is found through its own link, at the file YARN shipped.
    assert deployment.model.tracking_uri == f"sqlite:///{cache / '1' / 'mlflow.db'}"


@pytest.mark.parametrize(
    "uri",
    [
        "models:/risk@champion",
        "models:/risk/3",
        "models:/risk/latest",
        "runs:/0123456789abcdef/model",
        "/opt/models/risk",
        "file:///opt/models/risk",
        "file:/opt/models/risk",
    ],
)
def test_model_uris_and_absolute_paths_are_left_alone(tmp_path: Path, uri: str) -> None:
    """Registry, run, absolute and URI model locations are not resolved against the file."""
    raw = minimal()
    raw["model"]["uri"] = uri
    assert parse_deployment(raw, base_dir=tmp_path).model.uri == uri


@pytest.mark.parametrize(
    "path",
    [
        "/data/raw/meters",
        "s3://bucket/raw/meters",
        "abfss://c@acct.dfs.core.windows.net/x",
        "dbfs:/mnt/raw/meters",  # Databricks writes one slash
        "file:/data/raw/meters",  # as Hadoop prints a local path
    ],
)
def test_absolute_and_uri_table_paths_are_left_alone(tmp_path: Path, path: str) -> None:
    """Absolute paths and storage URIs are kept as written for input and every table."""
    raw = minimal()
    raw["input"]["path"] = path
    for table in ("output", "quarantine", "runs"):
        raw[table]["path"] = f"{path}_{table}"

    deployment = parse_deployment(raw, base_dir=tmp_path)

    assert deployment.input.path == path
    assert deployment.output.path == f"{path}_output"
    assert deployment.quarantine.path == f"{path}_quarantine"
    assert deployment.runs.path == f"{path}_runs"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"quarantine": "out"}, "output and quarantine are the same location"),
        ({"runs": "out/"}, "output and runs are the same location"),
        ({"output": "raw"}, "input and output are the same location"),
        ({"output": "raw/scored"}, "output ("),
        ({"runs": "quarantine/runs"}, "runs ("),
        ({"output": "quarantine_failed_files"}, "failed-files table"),
    ],
)
def test_tables_that_share_a_location_are_refused(
    tmp_path: Path, changes: dict[str, str], named: str
) -> None:
    """Two tables in one place would replace each other's rows of a run, and a table inside a
    Parquet input folder would be read back as input: both are refused, naming the keys."""
    raw = minimal()
    for key, path in changes.items():
        raw[key]["path"] = path
    message = str(parse_error(raw, tmp_path))
    assert named in message
    assert "inside" in message or "same location" in message


@pytest.mark.parametrize("spelling", ["file://{}", "file:{}"])
def test_a_file_uri_and_a_plain_path_to_one_folder_are_one_location(
    tmp_path: Path, spelling: str
) -> None:
    """`file:///x/raw` and `/x/raw/scored` were compared as text and passed: the next run then
    read the output table back as input."""
    raw = minimal()
    raw["input"]["path"] = spelling.format(tmp_path / "raw")
    raw["output"]["path"] = str(tmp_path / "raw" / "scored")
    assert "inside input" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(
    "spelling",
    [
        "file://{base}//out",
        "file:{base}/./out/",
        "{base}/raw/../out",
        "{base}/link-to-out",
    ],
)
def test_every_spelling_of_one_local_folder_is_one_location(tmp_path: Path, spelling: str) -> None:
    """`file:///x//out` passed as another folder than `x/out`: the quarantine's commit then
    replaced the run's predictions in the same table, and the run still reconciled."""
    (tmp_path / "out").mkdir()
    (tmp_path / "link-to-out").symlink_to(tmp_path / "out")
    raw = minimal()
    raw["output"]["path"] = "out"
    raw["quarantine"]["path"] = spelling.format(base=tmp_path)
    assert "output and quarantine are the same location" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(
    ("output", "quarantine"),
    [
        ("s3a://lake/scored/out", "s3a://lake//scored/out/"),
        ("s3a://lake/scored/out", "S3A://lake/scored/./out"),
        ("abfss://c@acct.dfs.core.windows.net/out", "abfss://c@acct.dfs.core.windows.net//out"),
        ("dbfs:/mnt/out", "dbfs:///mnt/x/../out"),
    ],
)
def test_every_spelling_of_one_storage_location_is_one_location(
    tmp_path: Path, output: str, quarantine: str
) -> None:
    raw = minimal()
    raw["output"]["path"] = output
    raw["quarantine"]["path"] = quarantine
    assert "output and quarantine are the same location" in str(parse_error(raw, tmp_path))


def test_one_path_in_two_buckets_is_two_locations(tmp_path: Path) -> None:
    raw = minimal()
    raw["output"]["path"] = "s3a://lake/scored/out"
    raw["quarantine"]["path"] = "s3a://other/scored/out"
    parse_deployment(raw, base_dir=tmp_path)


def test_a_relative_folder_with_a_colon_in_its_name_is_still_a_path(tmp_path: Path) -> None:
    raw = minimal()
    raw["input"]["path"] = "meters-2026-01-01T10:30/raw"
    deployment = parse_deployment(raw, base_dir=tmp_path)
    assert deployment.input.path == str(tmp_path / "meters-2026-01-01T10:30" / "raw")


def test_a_table_whose_name_only_starts_like_another_is_accepted(tmp_path: Path) -> None:
    """`out` and `out_quarantine` are siblings, not one inside the other."""
    raw = minimal()
    raw["quarantine"]["path"] = "out_quarantine"
    assert parse_deployment(raw, base_dir=tmp_path).quarantine.path.endswith("out_quarantine")


@pytest.mark.parametrize(
    "tracking_uri",
    [
        "sqlite:////var/mlflow/mlflow.db",
        "http://mlflow.internal:5000",
        "databricks",
        "databricks-uc",
        "databricks://profile",
        "file:///var/mlruns",
    ],
)
def test_absolute_and_remote_tracking_uris_are_left_alone(
    tmp_path: Path, tracking_uri: str
) -> None:
    """Only a relative `sqlite:///` tracking URI or a relative path is rewritten."""
    raw = minimal()
    raw["model"]["tracking_uri"] = tracking_uri
    assert parse_deployment(raw, base_dir=tmp_path).model.tracking_uri == tracking_uri


def test_relative_file_uris_are_relative_to_the_file(tmp_path: Path) -> None:
    """`file:mlruns` (no slash) is relative to Hadoop and MLflow: it was left to the folder the
    job ran in (a tracking URI), or read as a folder named `file:model` (a model)."""
    raw = minimal()
    raw["model"] = {"uri": "file:model", "tracking_uri": "file:./mlruns"}
    raw["input"]["path"] = "file:raw"
    deployment = parse_deployment(raw, base_dir=tmp_path)
    assert deployment.model.tracking_uri == (tmp_path / "mlruns").resolve().as_uri()
    assert deployment.model.uri == str((tmp_path / "model").resolve())
    assert deployment.input.path == str((tmp_path / "raw").resolve())


def test_local_tables_below_the_root_folder_input_are_refused(tmp_path: Path) -> None:
    """`/` holds every local path: `//` was compared, so nothing was inside it."""
    raw = minimal()
    raw["input"]["path"] = "/"
    assert "lies inside input" in str(parse_error(raw, tmp_path))


def test_a_null_path_beside_a_table_is_unset(tmp_path: Path) -> None:
    """As every other null is: `path: null` beside `table:` was "path or table, not both"."""
    raw = minimal()
    raw["input"] = {"format": "delta", "table": "lake.meters", "path": None}
    assert parse_deployment(raw, base_dir=tmp_path).input.table == "lake.meters"


@pytest.mark.parametrize("given", ["mlruns", "./registry/mlruns", "runs-2026-01-01T10:30/mlruns"])
def test_a_folder_store_given_as_a_relative_path_is_relative_to_the_file(
    tmp_path: Path, given: str
) -> None:
    """MLflow took `mlruns` relative to the folder the job ran in, as no other path is."""
    raw = minimal()
    raw["model"]["tracking_uri"] = given
    resolved = parse_deployment(raw, base_dir=tmp_path).model.tracking_uri
    assert resolved == str((tmp_path / given).resolve())


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("a" * 255, True), ("a" * 256, False), ("meter-risk_v2.1", True), ("-risk", False)],
)
def test_a_deployment_name_is_a_folder_name_of_at_most_255_characters(
    tmp_path: Path, name: str, accepted: bool
) -> None:
    """A longer name passed, and every run failed at its staging folder, whose name a file
    system limits to 255 bytes."""
    raw = minimal()
    raw["name"] = name
    if accepted:
        assert parse_deployment(raw, base_dir=tmp_path).name == name
    else:
        assert "at most 255 of them" in str(parse_error(raw, tmp_path))


# --- mistakes ---------------------------------------------------------------------------------


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    """A misspelt top-level key is an error naming it."""
    raw = minimal()
    raw["limit"] = {"max_error_rows": 3}
    assert "unknown key limit;" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(
    ("section", "key", "named"),
    [
        ("output", "pth", "output.pth"),
        ("model", "trackinguri", "model.trackinguri"),
        ("input", "passthru", "input.passthru"),
        ("limits", "max_errors", "limits.max_errors"),
        ("scoring", "batchsize", "scoring.batchsize"),
    ],
)
def test_unknown_nested_key_is_named(tmp_path: Path, section: str, key: str, named: str) -> None:
    """A misspelt key inside a section is named with its section, e.g. `output.pth`."""
    raw = minimal()
    raw.setdefault(section, {})[key] = "x"
    assert f"unknown key {named};" in str(parse_error(raw, tmp_path))


def test_unknown_key_in_a_rule_is_named(tmp_path: Path) -> None:
    """A misspelt key in a rule names the rule's position."""
    raw = minimal()
    raw["rules"] = [{"name": "r", "expr": "x > 0", "acton": "warn"}]
    assert "rules[0].acton" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize("key", ["name", "model", "input", "output", "quarantine", "runs"])
def test_missing_top_level_key_is_named(tmp_path: Path, key: str) -> None:
    """Each required top-level key, when missing, is named."""
    raw = minimal()
    del raw[key]
    assert f"missing required key {key}." in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(
    ("section", "key"),
    [("model", "uri"), ("input", "format"), ("input", "path"), ("runs", "path")],
)
def test_missing_nested_key_is_named(tmp_path: Path, section: str, key: str) -> None:
    """A required key missing inside a section is named with its section."""
    raw = minimal()
    del raw[section][key]
    assert f"missing required key {section}.{key}" in str(parse_error(raw, tmp_path))


def test_bad_input_format_is_named(tmp_path: Path) -> None:
    """An input format other than parquet or delta names input.format and the value."""
    raw = minimal()
    raw["input"]["format"] = "csv"
    message = str(parse_error(raw, tmp_path))
    assert "input.format" in message
    assert "'csv'" in message


def test_bad_rule_action_is_named(tmp_path: Path) -> None:
    """A rule action other than quarantine, warn or fail names the rule's action key."""
    raw = minimal()
    raw["rules"] = [
        {"name": "ok", "expr": "a > 0", "action": "warn"},
        {"name": "bad", "expr": "b > 0", "action": "drop"},
    ]
    message = str(parse_error(raw, tmp_path))
    assert "rules[1].action" in message
    assert "'drop'" in message


def test_duplicate_rule_name_is_named(tmp_path: Path) -> None:
    """Two rules of one name are an error naming the rule."""
    raw = minimal()
    raw["rules"] = [
        {"name": "non_negative", "expr": "a >= 0"},
        {"name": "non_negative", "expr": "b >= 0"},
    ]
    message = str(parse_error(raw, tmp_path))
    assert "rule name 'non_negative'" in message
    assert "twice" in message


@pytest.mark.parametrize("fraction", [1.5, -0.01, "0.1", True])
def test_max_error_fraction_outside_0_to_1_is_named(tmp_path: Path, fraction: Any) -> None:
    """max_error_fraction must be a number in 0..1."""
    raw = minimal()
    raw["limits"] = {"max_error_fraction": fraction}
    assert "limits.max_error_fraction" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize("fraction", [0, 1, 0.5])
def test_max_error_fraction_bounds_are_allowed(tmp_path: Path, fraction: float) -> None:
    """0 and 1 themselves are valid fractions, read as floats."""
    raw = minimal()
    raw["limits"] = {"max_error_fraction": fraction}
    limits = parse_deployment(raw, base_dir=tmp_path).limits
    assert limits.max_error_fraction == fraction
    assert isinstance(limits.max_error_fraction, float)


@pytest.mark.parametrize("size", [0, -5, 2.5, True, 2**31])
def test_bad_batch_size_is_named(tmp_path: Path, size: Any) -> None:
    """batch_size must be a whole number of at least 1."""
    raw = minimal()
    raw["scoring"] = {"batch_size": size}
    assert "scoring.batch_size" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(("given", "parsed"), [("string", "string"), ("long", "bigint")])
def test_result_type_takes_spark_type_names(tmp_path: Path, given: str, parsed: str) -> None:
    """scoring.result_type takes Spark's type names, spark_udf's `long` included."""
    raw = minimal()
    raw["scoring"] = {"result_type": given}
    assert parse_deployment(raw, base_dir=tmp_path).scoring.result_type == parsed


def test_unknown_result_type_is_named(tmp_path: Path) -> None:
    """A type a prediction column cannot have names the key and the choices."""
    raw = minimal()
    raw["scoring"] = {"result_type": "array<double>"}
    message = str(parse_error(raw, tmp_path))
    assert "scoring.result_type" in message and "bigint" in message


def test_negative_max_error_rows_is_named(tmp_path: Path) -> None:
    """max_error_rows must be a whole number >= 0."""
    raw = minimal()
    raw["limits"] = {"max_error_rows": -1}
    assert "limits.max_error_rows" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize("key", ["min_files", "min_rows", "max_unreadable_files"])
@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_input_expect_counts_must_be_whole_numbers(tmp_path: Path, key: str, value: Any) -> None:
    raw = minimal()
    raw["input"]["expect"] = {key: value}
    assert f"input.expect.{key} must be a whole number >= 0" in str(parse_error(raw, tmp_path))


def test_max_unreadable_files_is_read_and_off_by_default(tmp_path: Path) -> None:
    raw = minimal()
    assert parse_deployment(raw, base_dir=tmp_path).input.expect.max_unreadable_files is None
    raw["input"]["expect"] = {"max_unreadable_files": 0}
    assert parse_deployment(raw, base_dir=tmp_path).input.expect.max_unreadable_files == 0


def test_empty_string_value_is_named(tmp_path: Path) -> None:
    """An empty required string names its key."""
    raw = minimal()
    raw["model"]["uri"] = "  "
    assert "model.uri" in str(parse_error(raw, tmp_path))


def test_section_that_is_not_a_mapping_is_named(tmp_path: Path) -> None:
    """`output: somewhere` (a string, not a mapping) names output."""
    raw = minimal()
    raw["output"] = "scored/out"
    assert "output must be a mapping" in str(parse_error(raw, tmp_path))


def test_invalid_yaml_is_a_deployment_error(tmp_path: Path) -> None:
    """A file that is not YAML gives a DeploymentError naming the file and the line."""
    file = write(tmp_path, "name: job\nmodel: {uri: [unclosed\n")
    with pytest.raises(DeploymentError) as info:
        load_deployment(file)
    message = str(info.value)
    assert info.value.exit_code == EXIT_USAGE
    assert str(file) in message
    assert "not valid YAML" in message
    assert "line " in message


def test_empty_file_is_a_deployment_error(tmp_path: Path) -> None:
    """An empty file is not a mapping of keys."""
    with pytest.raises(DeploymentError, match="must be a mapping"):
        load_deployment(write(tmp_path, ""))


def test_missing_file_is_a_deployment_error(tmp_path: Path) -> None:
    """A path that does not exist gives a DeploymentError naming it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DeploymentError) as info:
        load_deployment(missing)
    assert info.value.exit_code == EXIT_USAGE
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_error_message_names_the_source_file(tmp_path: Path) -> None:
    """Errors from load_deployment start with the file they came from."""
    raw = minimal()
    raw["output"] = {"pth": "x"}
    file = write(tmp_path, raw)
    with pytest.raises(DeploymentError) as info:
        load_deployment(file)
    assert str(info.value).startswith(f"{file}: unknown key output.pth")


# --- with_input_path --------------------------------------------------------------------------


def test_with_input_path_replaces_only_the_input_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The override resolves a relative path against the cwd and changes nothing else."""
    original = load_deployment(write(tmp_path, FULL_YAML))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    changed = original.with_input_path("other/meters")

    assert changed.input.path == str(cwd.resolve() / "other" / "meters")
    assert changed.input.format == original.input.format
    assert changed.input.key == original.input.key
    assert changed.input.passthrough == original.input.passthrough
    assert dataclasses.replace(changed, input=original.input) == original
    assert original.input.path == str(tmp_path.resolve() / "raw" / "meters")


def test_with_input_path_keeps_an_absolute_path(tmp_path: Path) -> None:
    """An absolute override is used as given."""
    original = parse_deployment(minimal(), base_dir=tmp_path)
    target = tmp_path.resolve() / "abs" / "input"
    assert original.with_input_path(str(target)).input.path == str(target)


def test_with_input_path_leaves_a_uri_alone(tmp_path: Path) -> None:
    """`--input s3://bucket/raw` is kept as a URI, as an input.path URI in the file is."""
    original = parse_deployment(minimal(), base_dir=tmp_path)
    assert original.with_input_path("s3://bucket/raw").input.path == "s3://bucket/raw"


def test_input_override_replaces_a_catalog_input_table(tmp_path: Path) -> None:
    """--input PATH reads that path even when the file names an input table."""
    raw = minimal()
    raw["input"] = {"format": "delta", "table": "raw.meters"}
    deployment = parse_deployment(raw, base_dir=tmp_path).with_input_path(str(tmp_path / "x"))
    assert deployment.input.table is None
    assert deployment.input.path == str(tmp_path / "x")


def load_error(file: Path) -> str:
    with pytest.raises(DeploymentError) as info:
        load_deployment(file)
    assert info.value.exit_code == EXIT_USAGE
    return str(info.value)


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently: a second `name:` would win unseen."""
    text = yaml.safe_dump(minimal()) + "name: other-name\n"
    assert "key 'name' appears twice" in load_error(write(tmp_path, text))


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    """`<<:` merges a mapping, and a key given beside it overrides, as YAML says; an anchored
    mapping (`&limits`, then `*limits`) must itself sit under a known key."""
    merged = yaml.safe_dump(minimal()) + textwrap.dedent(
        """\
        limits:
          <<: {max_error_fraction: 0.1, max_error_rows: 5}
          max_error_rows: 7
        """
    )
    limits = load_deployment(write(tmp_path, merged)).limits
    assert (limits.max_error_fraction, limits.max_error_rows) == (0.1, 7)
    anchored = yaml.safe_dump(minimal()) + textwrap.dedent(
        """\
        shared: &limits {max_error_fraction: 0.1}
        limits: *limits
        """
    )
    with pytest.raises(DeploymentError, match="unknown key shared"):
        load_deployment(write(tmp_path, anchored))


def test_a_file_that_is_not_utf8_or_is_a_folder_is_named(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: compteur-\xe9t\xe9\n".encode("latin-1"))
    assert f"{latin} is not UTF-8" in load_error(latin)
    assert f"{tmp_path} is a folder" in load_error(tmp_path)


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """An OSError (a name too long; a file the scheduler's user may not read) was reported as a
    bug ("unexpected OSError"), exit 1."""
    too_long = tmp_path / ("a" * 300 + ".yaml")
    assert f"Deployment file {too_long} cannot be read: File name too long" in load_error(too_long)


@pytest.mark.parametrize(
    ("uri", "wanted"),
    [
        ("models:/risk@", "is not models:/NAME@ALIAS"),
        ("models:/risk/1/", "is not models:/NAME@ALIAS"),
        ("models:/", "is not models:/NAME@ALIAS"),
        ("Models:/risk@champion", "is not models:/NAME@ALIAS"),
        ("runs:/", "nor runs:/RUN_ID/PATH"),
        ("runs:/abc", "nor runs:/RUN_ID/PATH"),
        ("models:/risk/Production", "stages are not supported"),
        ("models:/risk/-1", "version '-1' is not a version number"),
        ("s3://bucket/model", "not s3: URIs"),
        ("dbfs:/models/risk", "not dbfs: URIs"),
    ],
)
def test_a_model_uri_no_registry_could_answer_is_refused_with_the_file(
    tmp_path: Path, uri: str, wanted: str
) -> None:
    """Refused when the file is read: before, `models:/risk@` failed only after Spark had
    started, and the failed run was recorded."""
    raw = minimal()
    raw["model"]["uri"] = uri
    message = str(parse_error(raw, tmp_path))
    assert message.startswith("dep.yaml: model.uri: ") and wanted in message


@pytest.mark.parametrize("name", ["nan", "Required_Null", "model_error", "usage:kwh_7d"])
def test_a_rule_named_like_a_built_in_check_is_refused(tmp_path: Path, name: str) -> None:
    """quarantined_by_reason counts built-in checks as `check:column`: a rule named
    `required_null:kwh_7d` merged its rows with the built-in check's, and one went uncounted."""
    raw = minimal()
    raw["rules"] = [{"name": name, "expr": "kwh_7d >= 0"}]
    assert f"rules[0].name {name!r} is taken" in str(parse_error(raw, tmp_path))


def test_a_rule_action_is_read_in_any_case(tmp_path: Path) -> None:
    """As input.format and scoring.result_type are."""
    raw = minimal()
    raw["rules"] = [{"name": "usage", "expr": "kwh_7d >= 0", "action": "Quarantine"}]
    assert parse_deployment(raw, base_dir=tmp_path).rules[0].action == "quarantine"


@pytest.mark.parametrize(
    ("table", "key", "where"),
    [
        ("input", "passthrough", "input.passthrough"),
        ("quarantine", "redact", "quarantine.redact"),
        ("output", "stats_columns", "output.stats_columns"),
    ],
)
def test_column_lists_refuse_empty_names_and_strip_spaces_as_the_key_is(
    tmp_path: Path, table: str, key: str, where: str
) -> None:
    """An empty name failed only after the run had started, as a column the input lacks."""
    raw = minimal()
    raw[table][key] = ["region", ""]
    assert f"{where} holds an empty column name" in str(parse_error(raw, tmp_path))
    raw[table][key] = ["region ", " meter_id"]
    parsed = parse_deployment(raw, base_dir=tmp_path)
    lists = {
        "input.passthrough": parsed.input.passthrough,
        "quarantine.redact": parsed.quarantine.redact,
        "output.stats_columns": parsed.output.stats_columns,
    }
    assert tuple(lists[where] or ()) == ("region", "meter_id")


def test_the_key_column_loses_spaces_around_it_and_an_empty_one_is_refused(
    tmp_path: Path,
) -> None:
    raw = minimal()
    raw["input"]["key"] = " meter_id "
    assert parse_deployment(raw, base_dir=tmp_path).input.key == "meter_id"
    raw["input"]["key"] = "  "
    assert "input.key must be a non-empty string" in str(parse_error(raw, tmp_path))


def test_a_number_in_exponent_form_is_a_number_as_yaml_1_2_reads_it(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) read `5e-2` as text, and the limit was refused as not a number."""
    text = yaml.safe_dump(minimal()) + "limits:\n  max_error_fraction: 5e-2\n"
    deployment = load_deployment(write(tmp_path, text))
    assert deployment.limits.max_error_fraction == pytest.approx(0.05)


@pytest.mark.parametrize("given", ["mlflow.db", "registry/mlflow.sqlite"])
def test_a_database_file_given_as_tracking_uri_is_refused_with_the_uri_to_write(
    tmp_path: Path, given: str
) -> None:
    """MLflow took `mlflow.db` as a folder store and said, in several sentences, that the
    model was not there."""
    raw = minimal()
    raw["model"]["tracking_uri"] = given
    assert f"write sqlite:///{given} for a SQLite registry" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "YES"])
def test_only_true_and_false_are_booleans_as_in_yaml_1_2(tmp_path: Path, word: str) -> None:
    """PyYAML (YAML 1.1) read a key spelled `on` as True: "unknown key limits.True"."""
    text = yaml.safe_dump(minimal()) + f"limits:\n  {word}: 1\n"
    with pytest.raises(DeploymentError, match=rf"unknown key limits\.{word};"):
        load_deployment(write(tmp_path, text))


@pytest.mark.parametrize(
    ("written", "read"),
    [
        *[(word, True) for word in ("true", "True", "TRUE")],
        *[(word, False) for word in ("false", "False", "FALSE")],
        *[(word, word) for word in ("on", "off", "yes", "no", "y", "n", "tRUE")],
    ],
)
def test_booleans_are_read_as_yaml_1_2_reads_them(written: str, read: Any) -> None:
    from lakescore.config import _UniqueKeyLoader

    assert yaml.load(f"value: {written}\n", Loader=_UniqueKeyLoader) == {"value": read}


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("010", 10),  # YAML 1.1: octal 8
        ("0o10", 8),
        ("0x10", 16),
        ("+20", 20),
        ("1_000", "1_000"),  # YAML 1.1: 1000
        ("1:30", "1:30"),  # YAML 1.1: 90 (base 60)
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("-.inf", float("-inf")),
        ("1_000.5", "1_000.5"),
        ("2026-11-26", "2026-11-26"),  # YAML 1.1: a date (a folder named so is a path)
    ],
)
def test_numbers_and_dates_are_read_as_yaml_1_2_reads_them(written: str, read: Any) -> None:
    """A batch size of `010` was 8; only YAML 1.2's forms of numbers are numbers."""
    from lakescore.config import _UniqueKeyLoader

    assert yaml.load(f"value: {written}\n", Loader=_UniqueKeyLoader) == {"value": read}


def test_a_batch_size_written_with_a_leading_zero_is_decimal(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal()) + "scoring:\n  batch_size: 010\n"
    assert load_deployment(write(tmp_path, text)).scoring.batch_size == 10


# --- mistakes a production file makes (audit of the file's parsing) ---------------------------


@pytest.mark.parametrize("section", ["output", "quarantine"])
@pytest.mark.parametrize(
    "root", ["s3a://scores", "s3a://scores/", "abfss://q@acct.dfs.core.windows.net/", "/"]
)
def test_a_table_at_the_root_of_its_storage_is_refused(
    tmp_path: Path, section: str, root: str
) -> None:
    """Its failed-files table and staging folder are named beside it: in another bucket."""
    raw = minimal()
    raw[section]["path"] = root
    message = str(parse_error(raw, tmp_path))
    assert f"{section}.path" in message and "is the root of its storage" in message


def test_an_input_or_runs_table_at_the_root_of_a_bucket_is_accepted(tmp_path: Path) -> None:
    """Nothing is named beside them."""
    raw = minimal()
    raw["input"]["path"] = "s3a://landing/"
    raw["runs"]["path"] = "s3a://runs-bucket/"
    deployment = parse_deployment(raw, base_dir=tmp_path)
    assert deployment.input.path == "s3a://landing/"
    assert deployment.runs.path == "s3a://runs-bucket/"


@pytest.mark.parametrize(
    "marker",
    [
        "/data/raw/_SUCCESS",
        "s3a://lake/raw/_SUCCESS",
        "~/_SUCCESS",
        ".",
        "..",
        "./",
        "x/..",
        "../_S",
        "x/../../y",
    ],
)
def test_a_marker_given_as_a_path_is_refused(tmp_path: Path, marker: str) -> None:
    """It is looked for inside the input's folder: a path would never be found, and every run
    would be aborted as waiting for its input; `.` and `..` are folders, always found."""
    raw = minimal()
    raw["input"]["expect"] = {"marker": marker}
    assert "input.expect.marker" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(
    ("section", "key", "names", "named"),
    [
        ("input", "passthrough", ["meter_id", "Meter_ID"], "names column 'meter_id' twice"),
        ("quarantine", "redact", ["email", "Email"], "names column 'email' twice"),
        ("output", "stats_columns", ["_run_id", "risk", "_run_id"], "names a column twice"),
    ],
)
def test_a_column_named_twice_is_refused(
    tmp_path: Path, section: str, key: str, names: list[str], named: str
) -> None:
    """Two spellings are one column to Spark; Delta refuses duplicate statistics columns only
    when it creates the table, after the scoring pass."""
    raw = minimal()
    raw[section][key] = names
    assert f"{section}.{key} {named}" in str(parse_error(raw, tmp_path))


def test_a_passthrough_or_redact_name_repeated_as_written_counts_once(tmp_path: Path) -> None:
    """Harmless, and accepted before: a file that repeats one is not refused on upgrade."""
    raw = minimal()
    raw["input"]["passthrough"] = ["meter_id", "region", "meter_id"]
    raw["quarantine"]["redact"] = ["email", "email"]
    deployment = parse_deployment(raw, base_dir=tmp_path)
    assert deployment.input.passthrough == ("meter_id", "region")
    assert deployment.quarantine.redact == ("email",)


@pytest.mark.parametrize("value", ["", False, {}])
@pytest.mark.parametrize(("section", "key"), [("input", "passthrough"), ("quarantine", "redact")])
def test_an_empty_value_that_is_not_a_list_is_refused(
    tmp_path: Path, section: str, key: str, value: Any
) -> None:
    """`redact: ''` silently meant no redaction: the values would land in the table."""
    raw = minimal()
    raw[section][key] = value
    assert f"{section}.{key} must be a list of column names" in str(parse_error(raw, tmp_path))


def test_a_null_list_still_means_none(tmp_path: Path) -> None:
    raw = minimal()
    raw["input"]["passthrough"] = None
    raw["quarantine"]["redact"] = None
    deployment = parse_deployment(raw, base_dir=tmp_path)
    assert deployment.input.passthrough == () and deployment.quarantine.redact == ()


@pytest.mark.parametrize(
    ("output", "within"),
    [
        ("s3a://lake/raw/scored", "s3://lake/raw"),
        ("abfss://c@a.dfs.core.windows.net/raw/out", "abfs://c@a.dfs.core.windows.net/raw"),
    ],
)
def test_an_output_inside_the_input_under_another_schemes_name_is_refused(
    tmp_path: Path, output: str, within: str
) -> None:
    """`s3` and `s3a` (EMR, Databricks) reach one bucket: the output would be read as input."""
    raw = minimal()
    raw["input"]["path"] = within
    raw["output"]["path"] = output
    assert "lies inside input" in str(parse_error(raw, tmp_path))


@pytest.mark.parametrize(("key", "value"), [("name", 2026), ("input.path", 20260101)])
def test_a_bare_number_for_text_says_to_quote_it(tmp_path: Path, key: str, value: int) -> None:
    raw = minimal()
    if key == "name":
        raw["name"] = value
    else:
        raw["input"]["path"] = value
    message = str(parse_error(raw, tmp_path))
    assert f"{key} is read as a number; put it in quotes, as you wrote it" in message


def test_a_home_folder_that_cannot_be_found_is_a_deployment_error(tmp_path: Path) -> None:
    raw = minimal()
    raw["input"]["path"] = "~no_such_user_lakescore/raw"
    message = str(parse_error(raw, tmp_path))
    assert message.startswith("dep.yaml: input.path '~no_such_user_lakescore/raw'")
    assert "absolute path" in message
