"""lakescore's Delta tables: created while another run creates them, and the files writes leave."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from pyspark.sql import types as T

from lakescore import io
from lakescore.io import (
    committed_version,
    ensure_delta_table,
    overwrite_run_rows,
    replace_run_rows,
)
from lakescore.runs import RUNNING, RunRecord, write_run

SCHEMA = T.StructType([T.StructField("id", T.LongType())])


def test_a_table_another_writer_is_creating_is_used_not_an_error(
    spark: Any, tmp_path: Path
) -> None:
    # Another creator is writing its first commit (a temporary file in _delta_log, renamed
    # when complete): Delta refuses to create a table in a folder that is not empty.
    path = tmp_path / "table"
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / ".00000000000000000000.json.in-flight.tmp").write_text("{}")

    failures: list[BaseException] = []

    def commit_soon() -> None:
        try:
            time.sleep(1.0)
            spark.range(3).write.format("delta").save(str(path))
        except BaseException as exc:  # reported by the test, not lost with the thread
            failures.append(exc)

    other = threading.Thread(target=commit_soon)
    other.start()
    try:
        ensure_delta_table(spark, str(path), SCHEMA, {"id": "row id"})
        there_on_return = DeltaTable.isDeltaTable(spark, str(path))  # it waited for the other
    finally:
        other.join()
    assert not failures
    assert there_on_return
    assert spark.read.format("delta").load(str(path)).count() == 3


def test_an_existing_table_at_a_path_with_a_quote_is_named_in_the_catalog(
    spark: Any, tmp_path: Path
) -> None:
    """The location is a SQL string: a `'` in it ended the string early (a parse error)."""
    path = tmp_path / "o'brien" / "scores"
    spark.range(2).write.format("delta").save(str(path))
    name = f"default.quoted_{uuid.uuid4().hex[:8]}"
    try:
        ensure_delta_table(spark, str(path), SCHEMA, {"id": "row id"}, table_name=name)
        assert spark.table(name).count() == 2
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_each_run_record_write_leaves_one_data_file_and_the_table_uses_it(
    spark: Any, tmp_path: Path
) -> None:
    # A one-row frame made on the driver has one partition per core; Delta wrote a file for the
    # empty ones too, which no table version references and only VACUUM removes.
    path = tmp_path / "runs"
    started = datetime(2026, 11, 26, tzinfo=UTC)
    for run_id in ("r1", "r2", "r3"):
        write_run(spark, str(path), RunRecord(run_id, "d", RUNNING, started, "/in"))
    on_disk = {f.name for f in path.glob("*.parquet")}
    in_table = {Path(f).name for f in spark.read.format("delta").load(str(path)).inputFiles()}
    assert len(on_disk) == 3
    assert on_disk == in_table


def test_an_attempt_removes_its_own_and_older_staging_but_not_a_newer_attempts(
    spark: Any, tmp_path: Path
) -> None:
    """Two attempts of one run id can overlap: the older one finishing must not delete the
    folder the newer one is writing or committing."""
    from lakescore.io import attempt_staging_path, delete_staging

    run = str(tmp_path / "run")
    folders = {n: attempt_staging_path(run, n, f"id{n}") for n in (1, 2, 3)}
    for folder in folders.values():
        Path(folder).mkdir(parents=True)
        (Path(folder) / "part-0.parquet").write_bytes(b"x")

    delete_staging(spark, run, 2, folders[2])
    assert sorted(p.name for p in Path(run).iterdir()) == [Path(folders[3]).name]

    delete_staging(spark, run, 3, folders[3])
    assert not Path(run).exists()


def test_a_run_id_with_a_colon_stages_under_a_name_hdfs_takes(spark: Any, tmp_path: Path) -> None:
    """HDFS refuses a `:` in a name, and README allows one in a run id
    (`nightly-2026-11-25T02:00`): every such run failed at its staging write on HDFS."""
    from lakescore.io import (
        attempt_staging_path,
        delete_staging,
        read_staging,
        staging_path,
        write_staging,
    )

    output = str(tmp_path / "out" / "predictions")
    run = staging_path(output, "meter-risk", "nightly-2026-11-25T02:00")
    assert run != staging_path(output, "meter-risk", "nightly-2026-11-25T02_00")
    attempt = attempt_staging_path(run, 1, "abc")
    write_staging(spark.range(3), attempt)

    [folder] = (tmp_path / "out" / "_lakescore_staging" / "meter-risk").iterdir()
    assert ":" not in folder.name and folder.name == "nightly-2026-11-25T02%3A00"
    assert sorted(row.id for row in read_staging(spark, attempt).collect()) == [0, 1, 2]
    delete_staging(spark, run, 1, attempt)
    assert not folder.exists()


@pytest.mark.parametrize(
    ("default", "value"),
    [
        ("enableDeletionVectors", "true"),
        ("enableTypeWidening", "true"),
        ("enableRowTracking", "true"),
        ("enableInCommitTimestamps", "true"),
        ("checkpointPolicy", "v2"),
        ("columnMapping.mode", "name"),
        ("feature.deletionVectors", "supported"),
    ],
)
def test_new_tables_stay_readable_by_delta_rs_whatever_the_session_defaults_to(
    spark: Any, tmp_path: Path, default: str, value: str
) -> None:
    """Workspaces turn table features on for new tables (deletion vectors, row tracking, v2
    checkpoints...); delta-rs cannot read, or cannot append to, a table that has some of them,
    and the README promises that any Delta reader can read lakescore's tables (and append to
    the runs table)."""
    from deltalake import DeltaTable as RustTable
    from deltalake import write_deltalake

    path = str(tmp_path / "table")
    setting = f"spark.databricks.delta.properties.defaults.{default}"
    spark.conf.set(setting, value)
    try:
        ensure_delta_table(spark, path, SCHEMA, {"id": "row id"})
    finally:
        spark.conf.unset(setting)
    spark.range(3).write.format("delta").mode("append").save(path)
    write_deltalake(path, pa.table({"id": pa.array([3], pa.int64())}), mode="append")
    properties = DeltaTable.forPath(spark, path).detail().first()["properties"]
    assert properties.get(f"delta.{default}") != value
    assert sorted(RustTable(path).to_pyarrow_table().column("id").to_pylist()) == [0, 1, 2, 3]


def test_a_timestamp_ntz_column_can_join_an_existing_table(spark: Any, tmp_path: Path) -> None:
    """Delta refuses a write that brings a table its first timestamp_ntz column unless the
    table has the feature: a new naive-time input column must not fail every later run."""
    from deltalake import DeltaTable as RustTable

    path = str(tmp_path / "table")
    ensure_delta_table(spark, path, SCHEMA, {})
    with_time = spark.sql("SELECT 1L AS id, TIMESTAMP_NTZ'2026-11-26 10:00:00' AS read_at")
    ensure_delta_table(spark, path, with_time.schema, {})
    with_time.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
    assert RustTable(path).to_pyarrow_table().num_rows == 1


def test_a_session_without_delta_commit_metrics_still_gets_each_commits_row_count(
    spark: Any, tmp_path: Path
) -> None:
    """The run's counts come from its commits' operationMetrics; a session that turns them off
    (spark.databricks.delta.history.metricsEnabled=false) gets them by counting the run's rows
    in the committed version, instead of a run that fails for counts of 0."""
    path = str(tmp_path / "t")
    key = "spark.databricks.delta.history.metricsEnabled"
    spark.range(5).selectExpr("id", "'other' AS run").write.format("delta").save(path)
    spark.conf.set(key, "false")
    rows = [spark.range(n).selectExpr("id", "'r' AS run") for n in (3, 2)]
    try:
        first, again = (replace_run_rows(frame, path, "run", "r", {}) for frame in rows)
    finally:
        spark.conf.unset(key)
    assert (first.rows, again.rows) == (3, 2)
    assert not DeltaTable.forPath(spark, path).history(1).first()["operationMetrics"]


def test_a_commit_is_found_by_its_user_metadata_once_others_came_after_it(
    spark: Any, tmp_path: Path
) -> None:
    """How a run whose commit call failed after Delta committed finds what to take back."""
    path = str(tmp_path / "t")
    ours = {"lakescore_run_id": "r", "attempt_started_at": "2026-11-27T08:00:00+00:00"}
    assert committed_version(spark, path, ours) is None  # no table yet
    spark.range(2).selectExpr("id", "'other' AS run").write.format("delta").save(path)
    assert committed_version(spark, path, ours) is None  # a table without this commit
    overwrite_run_rows(spark.range(3).selectExpr("id", "'r' AS run"), path, "run", "r", ours)
    overwrite_run_rows(spark.range(1).selectExpr("id", "'s' AS run"), path, "run", "s", {})

    assert committed_version(spark, path, ours) == 1
    assert committed_version(spark, path, {**ours, "attempt_started_at": "later"}) is None


def test_a_commit_is_found_however_many_other_writers_committed_after_it(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A successful write looks its own commit up to report its version and row count: the
    search covers every commit since the write began, not a fixed number (past 50 other
    commits the run said it had committed nothing, and its counts did not reconcile)."""
    from deltalake import write_deltalake

    path = str(tmp_path / "t")
    spark.range(1).selectExpr("id", "'other' AS run").write.format("delta").save(path)
    other = pa.table({"id": pa.array([1], pa.int64()), "run": ["s"]})
    write = io.overwrite_run_rows

    def then_others_commit(*args: Any) -> str:
        metadata = write(*args)
        for _ in range(55):  # another writer (delta-rs), before the run looks its commit up
            write_deltalake(path, other, mode="append")
        return metadata

    monkeypatch.setattr(io, "overwrite_run_rows", then_others_commit)
    ours = spark.range(3).selectExpr("id", "'r' AS run")

    commit = replace_run_rows(ours, path, "run", "r", {"lakescore_run_id": "r"})

    assert (commit.committed, commit.version, commit.rows) == (True, 1, 3)
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 56


def test_a_commit_is_found_when_others_commit_while_it_is_looked_up(
    spark: Any, tmp_path: Path
) -> None:
    """Delta's history(n) is the newest n commits when it is read: others committing between
    the look at the newest version and the deeper search moved the window past the run's own
    commit, which was then reported as not committed (and never taken back on a failure)."""
    from deltalake import write_deltalake

    path = str(tmp_path / "t")
    spark.range(1).selectExpr("id", "'other' AS run").write.format("delta").save(path)
    ours = overwrite_run_rows(spark.range(3).selectExpr("id", "'r' AS run"), path, "run", "r", {})
    other = pa.table({"id": pa.array([1], pa.int64()), "run": ["s"]})
    write_deltalake(path, other, mode="append")  # version 2: ours is not the newest

    class OthersCommitBeforeTheSearch:
        def __init__(self, table: Any) -> None:
            self.table, self.searched = table, False

        def history(self, limit: int) -> Any:
            if limit > 1 and not self.searched:
                self.searched = True
                for _ in range(3):  # versions 3-5
                    write_deltalake(path, other, mode="append")
            return self.table.history(limit)

    table = OthersCommitBeforeTheSearch(DeltaTable.forPath(spark, path))
    found = io._commit_since(table, ours, before=0)

    assert table.searched and found is not None and int(found["version"]) == 1


def test_a_write_delta_skips_is_reported_as_not_committed(spark: Any, tmp_path: Path) -> None:
    """Nothing to add and nothing to replace: Delta commits nothing, and the run records no
    version for that table."""
    path = str(tmp_path / "t")
    spark.range(2).selectExpr("id", "'other' AS run").write.format("delta").save(path)

    commit = replace_run_rows(spark.range(0).selectExpr("id", "'r' AS run"), path, "run", "r", {})

    assert (commit.committed, commit.rows, commit.version) == (False, 0, 0)
    assert commit.recorded_version is None
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == 0


def test_struct_fields_null_on_every_row_go_into_the_tables_struct_as_typed_nulls(
    spark: Any,
) -> None:
    """Read as text, a field no file held a value of cannot be cast to the table's struct
    (Spark casts no string to a struct) nor, in ANSI mode, to every scalar type: rebuilt. Its
    other fields are cast as in any other column (a double as text is Spark's `2.0`)."""
    from pyspark.sql import Row

    from lakescore.table_fit import conform, fit

    frame = spark.sql(
        "SELECT named_struct('a', 1, 'x', 2.0D, 'flag', CAST(NULL AS STRING), 'inner', "
        "CAST(NULL AS STRING)) AS s"
    )
    inner = T.StructType([T.StructField("x", T.IntegerType())])
    table = T.StructType(
        [
            T.StructField(
                "s",
                T.StructType(
                    [
                        T.StructField("a", T.LongType()),
                        T.StructField("x", T.StringType()),
                        T.StructField("flag", T.BooleanType()),
                        T.StructField("inner", inner),
                    ]
                ),
            )
        ]
    )

    fitted = conform(frame, fit(frame.schema, table, null_fields=[("s", "flag"), ("s", "inner")]))

    assert fitted.schema.simpleString() == table.simpleString()
    assert fitted.collect() == [Row(s=Row(a=1, x="2.0", flag=None, inner=None))]
