"""Whoever reads lakescore's tables gets the same rows: delta-rs (no JVM), polars, and Spark SQL,
by path and by a catalog name. The predictions table has Change Data Feed on, so a consumer can
read each run's inserts (and a rerun's replacements) incrementally."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import types as T

from lakescore import __version__
from lakescore.config import Deployment, load_deployment
from lakescore.runner import score
from lakescore.runs import RunRecord

RUN_ID = "consumers-1"
KEYS = {"predictions": "meter_id", "quarantine": "meter_id", "runs": "run_id", "failed": "path"}


@pytest.fixture
def scored(lakehouse: Any, spark: Any) -> tuple[Deployment, RunRecord]:
    """One finished run over a small Parquet lakehouse."""
    deployment = load_deployment(lakehouse(rows=400, files=4))
    record = score(spark, deployment, RUN_ID).record
    assert record.status == "succeeded" and record.rows_quarantined
    return deployment, record


def table_paths(deployment: Deployment) -> dict[str, str]:
    return {
        "predictions": deployment.output.path,
        "quarantine": deployment.quarantine.path,
        "runs": deployment.runs.path,
    }


def canonical(value: Any, dtype: T.DataType) -> Any:
    """One reader's cell as plain Python, the same for every reader: maps as dicts (delta-rs
    gives key/value pairs, polars key/value structs), timestamps as UTC, NaN kept apart from null.
    """
    if value is None:
        return None
    if isinstance(dtype, T.MapType):
        items = value.items() if isinstance(value, dict) else value
        pairs = ((i["key"], i["value"]) if isinstance(i, dict) else i for i in items)
        return {canonical(k, dtype.keyType): canonical(v, dtype.valueType) for k, v in pairs}
    if isinstance(dtype, T.ArrayType):
        return [canonical(v, dtype.elementType) for v in value]
    if isinstance(dtype, T.StructType):
        fields = value if isinstance(value, dict) else value.asDict()
        return {f.name: canonical(fields.get(f.name), f.dataType) for f in dtype.fields}
    if isinstance(dtype, T.TimestampType):
        # PySpark gives naive local times; delta-rs and polars give aware UTC times.
        return value.astimezone(UTC).isoformat()
    if isinstance(dtype, T.FloatType | T.DoubleType):
        return "NaN" if math.isnan(value) else float(value)
    return value


def rows_by_reader(spark: Any, name: str, path: str) -> dict[str, list[dict[str, Any]]]:
    """The whole table as canonical rows, sorted by key, from each of the three readers."""
    frame = spark.sql(f"SELECT * FROM delta.`{path}`")
    schema = frame.schema
    raw = {
        "spark_sql": [row.asDict() for row in frame.collect()],
        "delta_rs": RustDeltaTable(path).to_pyarrow_table().to_pylist(),
        "polars": pl.read_delta(path).to_dicts(),
    }
    key = KEYS[name]
    return {
        reader: sorted(
            ({f.name: canonical(row[f.name], f.dataType) for f in schema.fields} for row in rows),
            key=lambda row: (row[key], row.get("_run_id") or ""),
        )
        for reader, rows in raw.items()
    }


def test_three_readers_see_the_same_rows_and_lineage(
    scored: tuple[Deployment, RunRecord], spark: Any
) -> None:
    deployment, record = scored
    for name, path in table_paths(deployment).items():
        columns = {
            "spark_sql": spark.sql(f"SELECT * FROM delta.`{path}`").columns,
            "delta_rs": RustDeltaTable(path).to_pyarrow_table().column_names,
            "polars": pl.read_delta(path).columns,
        }
        assert columns["delta_rs"] == columns["spark_sql"] == columns["polars"], name
        rows = rows_by_reader(spark, name, path)
        assert rows["delta_rs"] == rows["spark_sql"] == rows["polars"], name

    rows = {
        name: rows_by_reader(spark, name, path)["delta_rs"]
        for name, path in table_paths(deployment).items()
    }
    predictions, quarantine, runs = rows["predictions"], rows["quarantine"], rows["runs"]
    assert len(predictions) == record.rows_scored and len(quarantine) == record.rows_quarantined
    assert [r["run_id"] for r in runs] == [RUN_ID] and runs[0]["status"] == "succeeded"
    assert runs[0]["rows_read"] == len(predictions) + len(quarantine) == 400
    input_files = {f"file:{p}" for p in Path(deployment.input.path).glob("*.parquet")}
    for row in predictions:
        assert row["_run_id"] == RUN_ID
        assert (row["_model_name"], row["_model_version"]) == ("meter_risk", "2")
        assert row["_model_uri"] == "models:/meter_risk/2" == record.model_uri
        assert row["_source_file"] in input_files and row["_source_file_modified_at"]
    assert len({r["_scored_at"] for r in predictions}) == 1  # one driver time for the run
    for row in quarantine:
        assert row["_run_id"] == RUN_ID and row["_model_version"] == "2"
        assert row["_errors"] and all(e["stage"] and e["rule"] for e in row["_errors"])
        assert row["_source_file"] in input_files
    assert {r["meter_id"] for r in predictions}.isdisjoint(r["meter_id"] for r in quarantine)


def test_three_readers_see_the_same_unreadable_files(lakehouse: Any, spark: Any) -> None:
    """The fourth table, `<quarantine>_failed_files`, answers "which files could not be read"
    without Spark too."""
    deployment = load_deployment(lakehouse(rows=100, files=2))
    Path(deployment.input.path, "zz-broken.parquet").write_text("not parquet")
    assert score(spark, deployment, "with-broken").record.status == "succeeded"

    rows = rows_by_reader(spark, "failed", deployment.quarantine.path + "_failed_files")
    assert rows["delta_rs"] == rows["spark_sql"] == rows["polars"]
    [failed] = rows["polars"]
    assert failed["path"].endswith("zz-broken.parquet") and failed["_run_id"] == "with-broken"
    assert failed["error"]


@pytest.fixture
def catalog_names(spark: Any) -> Iterator[dict[str, str]]:
    """Names for external tables in the session catalog, dropped again (the data stays)."""
    names = {t: f"lakescore_consumers_{t}" for t in ("predictions", "quarantine", "runs")}
    yield names
    for name in names.values():
        spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_spark_sql_reads_the_tables_by_catalog_name(
    scored: tuple[Deployment, RunRecord], spark: Any, catalog_names: dict[str, str]
) -> None:
    deployment, record = scored
    for table, path in table_paths(deployment).items():
        spark.sql(f"CREATE TABLE {catalog_names[table]} USING DELTA LOCATION '{path}'")

    by_version = spark.sql(
        f"SELECT _model_version, count(*) AS n FROM {catalog_names['predictions']} "
        f"WHERE _run_id = '{RUN_ID}' GROUP BY 1"
    ).collect()
    reasons = spark.sql(
        f"SELECT e.rule, count(*) AS n FROM {catalog_names['quarantine']} "
        "LATERAL VIEW explode(_errors) AS e GROUP BY 1"
    ).collect()
    run = spark.sql(f"SELECT * FROM {catalog_names['runs']} WHERE run_id = '{RUN_ID}'").first()

    assert [(r["_model_version"], r["n"]) for r in by_version] == [("2", record.rows_scored)]
    assert {r["rule"] for r in reasons} >= {"usage_non_negative"}
    assert run is not None and run["rows_read"] == run["rows_scored"] + run["rows_quarantined"]
    assert (run["rows_scored"], run["rows_quarantined"]) == (
        record.rows_scored,
        record.rows_quarantined,
    )


def test_change_data_feed_shows_each_runs_inserts_and_a_reruns_replacements(
    scored: tuple[Deployment, RunRecord], spark: Any
) -> None:
    deployment, record = scored
    path = deployment.output.path
    configuration = RustDeltaTable(path).metadata().configuration
    assert configuration["delta.enableChangeDataFeed"] == "true"
    assert record.output_version is not None
    # Statistics only where they skip files (run id, time, numeric predictions; Delta keeps
    # none for booleans), not on string keys.
    assert configuration["delta.dataSkippingStatsColumns"] == "_run_id,_scored_at,risk_score"

    def changes(version: int) -> dict[str, list[str]]:
        feed = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", version)
            .option("endingVersion", version)
            .load(path)
        )
        found: dict[str, list[str]] = {}
        for row in feed.select("_change_type", "meter_id", "_run_id").collect():
            assert row["_run_id"] == RUN_ID
            found.setdefault(row["_change_type"], []).append(row["meter_id"])
        return {kind: sorted(keys) for kind, keys in found.items()}

    scored_keys = sorted(
        RustDeltaTable(path).to_pyarrow_table(columns=["meter_id"]).column(0).to_pylist()
    )
    assert changes(record.output_version) == {"insert": scored_keys}

    rerun = score(spark, deployment, RUN_ID).record
    assert rerun.output_version is not None and rerun.output_version > record.output_version
    # Rerunning the id replaces exactly that run's rows: each old row deleted, each new inserted.
    assert changes(rerun.output_version) == {"delete": scored_keys, "insert": scored_keys}

    # delta-rs reads the same feed without a JVM.
    feed = RustDeltaTable(path).load_cdf(starting_version=rerun.output_version).read_all()
    kinds = feed.column("_change_type").to_pylist()
    assert sorted(set(kinds)) == ["delete", "insert"]
    assert kinds.count("insert") == kinds.count("delete") == len(scored_keys)


def test_the_tables_have_the_columns_and_types_the_design_names(
    scored: tuple[Deployment, RunRecord],
) -> None:
    """As a consumer reads them (delta-rs, Arrow types), written out here rather than taken
    from lakescore's own schema constants, which would agree with any change made to them."""
    deployment, _ = scored
    string, when = pa.string(), pa.timestamp("us", tz="UTC")

    def columns(path: str) -> list[tuple[str, pa.DataType]]:
        schema = RustDeltaTable(path).to_pyarrow_table().schema
        return [(field.name, field.type) for field in schema]

    assert columns(deployment.output.path) == [
        ("meter_id", string),
        ("region", string),
        ("risk_score", pa.float64()),  # the model's two outputs, a column each
        ("high_risk", pa.bool_()),
        ("_run_id", string),
        ("_model_name", string),
        ("_model_version", string),
        ("_model_uri", string),
        ("_scored_at", when),
        ("_source_file", string),
        ("_source_file_modified_at", when),  # and `_source_table_version` for a Delta input
    ]
    errors = pa.list_(
        pa.struct([(name, string) for name in ("stage", "rule", "column", "message")])
    )
    quarantine = columns(deployment.quarantine.path)
    assert quarantine[-5:] == [
        ("_errors", errors),
        ("_run_id", string),
        ("_quarantined_at", when),
        ("_source_file", string),
        ("_model_version", string),
    ]
    runs = dict(columns(deployment.runs.path))
    assert {name: runs[name] for name in _RUNS_DESIGN} == _RUNS_DESIGN

    # Path tables say which deployment and lakescore version made them, as catalog tables do.
    for path in table_paths(deployment).values():
        table = RustDeltaTable(path)
        settings = table.metadata().configuration
        assert settings["lakescore.deployment"] == deployment.name == "meter-risk-test"
        assert settings["lakescore.version"] == __version__
    comments = {
        f.name: f.metadata.get("comment")
        for f in RustDeltaTable(deployment.output.path).schema().fields
    }
    assert comments["_run_id"] == "lakescore run that wrote this row"


_RUNS_DESIGN = {
    **{name: pa.string() for name in ("run_id", "deployment", "status")},
    **{name: pa.timestamp("us", tz="UTC") for name in ("started_at", "finished_at")},
    **{name: pa.string() for name in ("model_uri", "model_name", "model_version", "input")},
    **{name: pa.int64() for name in ("rows_read", "rows_scored", "rows_quarantined")},
    "files_read": pa.int64(),
    "files_failed": pa.list_(pa.struct([("path", pa.string()), ("error", pa.string())])),
    "output_version": pa.int64(),
    "quarantine_version": pa.int64(),
    "error": pa.string(),
}
