"""Parquet footers: read on the driver without a Spark job per file, with the schemas a Spark read
of each file sees; partition folders are still read by Spark, with their partition columns."""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from lakescore import io
from lakescore.config import ExpectConfig, InputConfig
from lakescore.io import _read_footers, _schemas_by_spark, list_input_files, read_input

_T = TypeVar("_T")
_SPARK_TYPES = """
    1 AS i, CAST(2 AS BIGINT) AS l, CAST(1.5 AS DECIMAL(10,2)) AS d, TIMESTAMP'2026-01-02 03:04:05'
    AS ts, TIMESTAMP_NTZ'2026-01-02 03:04:05' AS ts_ntz, DATE'2026-01-02' AS dt, array(1, 2) AS a,
    map('k', 1) AS m, named_struct('x', 1, 'y', 's') AS st, CAST('ab' AS BINARY) AS bin,
    CAST(1 AS TINYINT) AS b, CAST(1 AS SMALLINT) AS sh, CAST(1.0 AS FLOAT) AS f, 's' AS s,
    CAST(NULL AS STRING) AS n, CAST('x' AS CHAR(3)) AS ch, CAST('y' AS VARCHAR(5)) AS vc
"""


def _with_spark_jobs(spark: Any, action: Callable[[], _T]) -> tuple[_T, set[int]]:
    """What `action` returns, and the Spark jobs it ran."""
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    result = action()
    return result, set(tracker.getJobIdsForGroup(None)) - before


def _arrow_table() -> pa.Table:
    table = pa.table(
        {
            "u8": pa.array([1], pa.uint8()),
            "u32": pa.array([1], pa.uint32()),
            "ts_ms": pa.array([1], pa.timestamp("ms", tz="UTC")),
            "day": pa.array([date(2026, 1, 2)]),
            "dec": pa.array([decimal.Decimal("1.23")], pa.decimal128(5, 2)),
            "numbers": pa.array([[1, 2]]),
            "nested": pa.array([{"a": 1, "b": "x"}]),
            "raw": pa.array([b"x"]),
            "category": pa.array(["a"]).dictionary_encode(),
            "required": pa.array([1], pa.int64()),
        }
    )
    schema = table.schema.set(9, pa.field("required", pa.int64(), nullable=False))
    return table.cast(schema)


def test_footers_give_the_schemas_spark_reads_without_a_job_per_file(
    spark: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "input"
    spark.sql(f"SELECT {_SPARK_TYPES}").coalesce(1).write.parquet(str(folder / "spark"))
    before = spark.conf.get("spark.sql.parquet.outputTimestampType")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        spark.sql(f"SELECT {_SPARK_TYPES}").coalesce(1).write.parquet(str(folder / "int96"))
    finally:
        # Put back the session's value, not Spark's default (INT96 again).
        spark.conf.set("spark.sql.parquet.outputTimestampType", before)
    pq.write_table(_arrow_table(), folder / "arrow.parquet")
    pq.write_table(_arrow_table(), folder / "arrow-v1.parquet", version="1.0")
    (folder / "not-parquet.parquet").write_text("this is not parquet\n")
    files = list_input_files(spark, str(folder))

    (schemas, failed), jobs_during = _with_spark_jobs(
        spark, lambda: _read_footers(spark, str(folder), files)
    )
    by_spark, failed_by_spark = _schemas_by_spark(spark, str(folder), files)

    assert not jobs_during, f"reading {len(files)} footers ran Spark job(s) {sorted(jobs_during)}"
    assert len(schemas) == 4
    assert schemas == by_spark
    assert [f.path for f in failed] == [f.path for f in failed_by_spark]
    assert failed[0].path.endswith("not-parquet.parquet")
    assert "not a Parquet file" in failed[0].error


def test_a_spark_without_the_footer_calls_reads_footers_through_spark_jobs(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spark's schema conversion is internal: if a Spark version moves it, reading goes on.
    folder = tmp_path / "input"
    folder.mkdir()
    pq.write_table(_arrow_table(), folder / "good.parquet")
    (folder / "bad.parquet").write_text("this is not parquet\n")
    files = list_input_files(spark, str(folder))
    expected = _read_footers(spark, str(folder), files)  # through the footer calls, no job
    monkeypatch.setattr(io, "_SPARK_PARQUET", "org.example.moved.parquet")

    (schemas, failed), jobs_during = _with_spark_jobs(
        spark, lambda: _read_footers(spark, str(folder), files)
    )

    assert jobs_during, "the fallback should read the footers with Spark jobs"
    assert schemas == expected[0]
    assert [f.path for f in failed] == [f.path for f in expected[1]]


def test_files_in_partition_folders_keep_their_partition_columns(
    spark: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "input"
    for day in ("2026-11-24", "2026-11-25"):
        (folder / f"day={day}").mkdir(parents=True)
        pq.write_table(pa.table({"meter_id": ["a", "b"]}), folder / f"day={day}" / "part.parquet")

    data = read_input(spark, InputConfig("parquet", str(folder)))

    rows = data.frame.groupBy(F.col("day").cast("string").alias("day")).count().collect()
    assert {r["day"]: r["count"] for r in rows} == {"2026-11-24": 2, "2026-11-25": 2}


def test_partition_values_are_typed_across_the_whole_folder(spark: Any, tmp_path: Path) -> None:
    """`code=007` beside `code=A12` is the string "007", as Spark reads the folder, not the int 7
    that the file alone would give."""
    folder = tmp_path / "input"
    for code in ("007", "A12"):
        (folder / f"code={code}").mkdir(parents=True)
        pq.write_table(pa.table({"meter_id": [code]}), folder / f"code={code}" / "part.parquet")

    data = read_input(spark, InputConfig("parquet", str(folder)))

    expected = {(r["meter_id"], r["code"]) for r in spark.read.parquet(str(folder)).collect()}
    assert expected == {("007", "007"), ("A12", "A12")}
    assert {(r["meter_id"], r["code"]) for r in data.frame.collect()} == expected


def test_partition_values_a_number_would_change_stay_as_their_folders_say(
    spark: Any, tmp_path: Path
) -> None:
    """Spark reads `code=007` and `code=012` as the ints 7 and 12, and `version=1.10` as 1.1: a
    key loses its zeros, and two folders can become one key. Numbers that read back as written
    stay numbers."""
    folder = tmp_path / "input"
    for code, version, n in (("007", "1.10", "7"), ("012", "2.0", "12")):
        leaf = folder / f"code={code}" / f"version={version}" / f"n={n}"
        leaf.mkdir(parents=True)
        pq.write_table(pa.table({"meter_id": [code]}), leaf / "part.parquet")

    data = read_input(spark, InputConfig("parquet", str(folder)))

    types = {f.name: f.dataType.simpleString() for f in data.frame.schema.fields}
    assert (types["code"], types["version"], types["n"]) == ("string", "string", "int")
    rows = {(r["meter_id"], r["code"], r["version"], r["n"]) for r in data.frame.collect()}
    assert rows == {("007", "007", "1.10", 7), ("012", "012", "2.0", 12)}


def test_listing_walks_nested_folders_and_skips_hidden_names(
    spark: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "input"
    wanted = [folder / "a.parquet", folder / "2026" / "11" / "b.parquet"]
    wanted += [folder / "_ingest=1" / "d.parquet"]  # a partition folder, as Spark reads it
    hidden = [folder / "_SUCCESS", folder / ".a.parquet.crc", folder / "_tmp" / "c.parquet"]
    hidden += [folder / "_metadata", folder / "2026" / "e.parquet._COPYING_"]
    hidden += [folder / "_tmp" / "f.parquet._COPYING_"]  # in a skipped folder: not data
    for path in wanted + hidden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")

    with caplog.at_level(logging.WARNING, logger="lakescore.io"):
        listed = list_input_files(spark, str(folder))

    assert [p.removeprefix("file:") for p in listed] == sorted(str(p) for p in wanted)
    # Only the file still being copied is worth a warning: its rows are on their way.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Input {folder}: 1 file(s) still being copied were not read: 2026/e.parquet._COPYING_"
    ]


def test_file_names_holding_pattern_characters_are_read_once_each(
    spark: Any, tmp_path: Path
) -> None:
    """Spark expands `?*[]{}` in the paths it reads: `a?.parquet` also matched `ab.parquet`
    (whose rows were then read twice) and `part[1].parquet` matched nothing (the run failed)."""
    folder = tmp_path / "input"
    folder.mkdir()
    names = ["ab.parquet", "a?.parquet", "part[1].parquet", "{x}.parquet", "a b.parquet"]
    for index, name in enumerate(names):
        pq.write_table(
            pa.table({"id": [f"{name}-0", f"{name}-1"], "n": [index, index]}), folder / name
        )

    data = read_input(spark, InputConfig(format="parquet", path=str(folder)))

    assert not data.failed and len(data.files) == len(names)
    ids = [row.id for row in data.frame.select("id").collect()]
    assert sorted(ids) == sorted(f"{name}-{i}" for name in names for i in (0, 1))
    sources = {row[0] for row in data.frame.select("_source_file").distinct().collect()}
    assert {unquote(source) for source in sources} == set(data.files)
    assert any(source.endswith("/a%20b.parquet") for source in sources)


def test_a_delta_table_read_as_parquet_is_refused(spark: Any, tmp_path: Path) -> None:
    """Its folder holds every version's files: an updated or deleted row would be scored from
    the files it left, and the run would succeed."""
    from lakescore.errors import DeploymentError

    table = tmp_path / "table"
    frame = spark.range(6).withColumn("day", F.col("id") % 2)
    frame.write.format("delta").partitionBy("day").save(str(table))
    spark.sql(f"DELETE FROM delta.`{table}` WHERE id = 4")
    for path in (table, table / "day=0"):
        with pytest.raises(DeploymentError, match=r"input\.format: delta") as info:
            read_input(spark, InputConfig(format="parquet", path=str(path)))
        assert str(table) in str(info.value)
    # A folder of its own inside the table's (Delta ignores `_` names) is Parquet like any other.
    exports = table / "_exports"
    exports.mkdir()
    pq.write_table(pa.table({"id": [1]}), exports / "e.parquet")
    assert read_input(spark, InputConfig(format="parquet", path=str(exports))).frame.count() == 1


def test_a_delta_table_in_a_folder_of_a_parquet_input_is_refused(
    spark: Any, tmp_path: Path
) -> None:
    """`landing/events/` a Delta table (another job's, or an output): its folder's files of
    every version were scored as Parquet, deleted rows included, and the run succeeded. One in
    a folder Spark skips is not read, and changes nothing."""
    from lakescore.errors import DeploymentError

    landing = tmp_path / "landing"
    landing.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), landing / "a.parquet")
    hidden = landing / "_exports" / "t"
    spark.range(3).write.format("delta").save(str(hidden))
    assert read_input(spark, InputConfig(format="parquet", path=str(landing))).frame.count() == 2

    events = landing / "events"
    spark.range(3).write.format("delta").save(str(events))
    spark.sql(f"DELETE FROM delta.`{events}` WHERE id = 1")
    with pytest.raises(DeploymentError, match=r"holds the Delta table .*landing/events,"):
        read_input(spark, InputConfig(format="parquet", path=str(landing)))


def test_all_null_columns_of_files_in_partition_folders_have_no_say_in_the_type(
    spark: Any, tmp_path: Path
) -> None:
    """A file whose `flag` pyarrow wrote as Parquet's null type (Spark reads int) left the other
    files' boolean as a string in partitioned folders, as it once did in flat ones."""
    folder = tmp_path / "input"
    (folder / "day=1").mkdir(parents=True)
    (folder / "day=2").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "flag": [True]}), folder / "day=1" / "f.parquet")
    nulls = pa.table({"id": ["b"], "flag": pa.array([None], pa.null())})
    pq.write_table(nulls, folder / "day=2" / "f.parquet")

    data = read_input(spark, InputConfig(format="parquet", path=str(folder)))

    assert dict(data.frame.dtypes)["flag"] == "boolean"
    assert data.all_null == frozenset()
    rows = {r.id: r.flag for r in data.frame.select("id", "flag").collect()}
    assert rows == {"a": True, "b": None}


def test_partition_folders_holding_pattern_characters_are_read(spark: Any, tmp_path: Path) -> None:
    """The partition types are probed on the input folder itself, which is a literal path too."""
    folder = tmp_path / "in[1] {x}"
    (folder / "day=1").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"]}), folder / "day=1" / "f.parquet")
    data = read_input(spark, InputConfig(format="parquet", path=str(folder)))
    assert [tuple(r) for r in data.frame.select("id", "day").collect()] == [("a", 1)]


def removed_after(monkeypatch: pytest.MonkeyPatch, step: str, file: Path) -> None:
    """Remove `file` once `lakescore.io.<step>` returns (a producer replacing its output, say):
    after the footers or schemas are read, or after the first check for removed files."""
    original = getattr(io, step)

    def then_removed(*args: Any) -> Any:
        found = original(*args)
        file.unlink(missing_ok=True)
        return found

    monkeypatch.setattr(io, step, then_removed)


def test_a_file_removed_after_its_footer_was_read_is_recorded_and_the_rest_read(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark checks every path before it reads any: one file removed between the listing and
    the read failed the whole run, and was recorded nowhere."""
    folder = tmp_path / "input"
    folder.mkdir()
    for name in ("a", "b"):
        pq.write_table(pa.table({"id": [f"{name}-0", f"{name}-1"]}), folder / f"{name}.parquet")
    removed_after(monkeypatch, "_read_footers", folder / "b.parquet")
    data = read_input(spark, InputConfig("parquet", str(folder)))

    assert sorted(r["id"] for r in data.frame.collect()) == ["a-0", "a-1"]
    assert [(unquote(f.path).endswith("b.parquet"), f.error) for f in data.failed] == [
        (True, "was removed after the input was listed")
    ]


def test_a_partition_file_removed_after_its_schema_was_read_is_recorded_and_the_rest_read(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in partition folders, whose types are probed on the files: the probe must not
    fail the run on the removed one."""
    folder = tmp_path / "input"
    for day, name in (("1", "a"), ("2", "b")):
        (folder / f"day={day}").mkdir(parents=True)
        table = pa.table({"id": [f"{name}-0", f"{name}-1"]})
        pq.write_table(table, folder / f"day={day}" / f"{name}.parquet")
    removed_after(monkeypatch, "_schemas_by_spark", folder / "day=2" / "b.parquet")
    data = read_input(spark, InputConfig("parquet", str(folder)))

    assert sorted((r["id"], r["day"]) for r in data.frame.collect()) == [("a-0", 1), ("a-1", 1)]
    assert [(unquote(f.path).endswith("b.parquet"), f.error) for f in data.failed] == [
        (True, "was removed after the input was listed")
    ]


def test_a_removed_file_leaves_its_folders_partition_value_in_the_type(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partition types are probed on one file per folder: when that file is removed after
    listing, another of its folder stands in, or `id=9999999999` would be left out and `id`
    inferred as an int from `id=1` alone."""
    folder = tmp_path / "input"
    for value, names in (("1", ["a"]), ("9999999999", ["b", "c"])):
        (folder / f"id={value}").mkdir(parents=True)
        for name in names:
            pq.write_table(pa.table({"n": [name]}), folder / f"id={value}" / f"{name}.parquet")
    removed_after(monkeypatch, "_schemas_by_spark", folder / "id=9999999999" / "c.parquet")
    data = read_input(spark, InputConfig("parquet", str(folder)))

    assert sorted((r["n"], r["id"]) for r in data.frame.collect()) == [
        ("a", 1),
        ("b", 9999999999),
    ]


def test_a_file_removed_while_the_read_leaves_out_another_is_recorded_too(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read was retried once without the files found gone: one more removed in between
    failed the whole run with PATH_NOT_FOUND."""
    folder = tmp_path / "input"
    folder.mkdir()
    for name in ("a", "b", "c"):
        pq.write_table(pa.table({"id": [f"{name}-0"]}), folder / f"{name}.parquet")
    removed_after(monkeypatch, "_read_footers", folder / "b.parquet")
    removed_after(monkeypatch, "_existing", folder / "c.parquet")
    data = read_input(spark, InputConfig("parquet", str(folder)))

    assert [r["id"] for r in data.frame.collect()] == ["a-0"]
    assert sorted(Path(unquote(f.path)).name for f in data.failed) == ["b.parquet", "c.parquet"]


def test_a_partition_file_removed_while_the_probe_leaves_out_another_is_recorded_too(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in the partition probe, retried once before."""
    folder = tmp_path / "input"
    for day, name in (("1", "a"), ("2", "b"), ("3", "c")):
        (folder / f"day={day}").mkdir(parents=True)
        pq.write_table(pa.table({"id": [name]}), folder / f"day={day}" / f"{name}.parquet")
    removed_after(monkeypatch, "_schemas_by_spark", folder / "day=2" / "b.parquet")
    removed_after(monkeypatch, "_existing", folder / "day=3" / "c.parquet")
    data = read_input(spark, InputConfig("parquet", str(folder)))

    assert [(r["id"], r["day"]) for r in data.frame.collect()] == [("a", 1)]
    assert sorted(Path(unquote(f.path)).name for f in data.failed) == ["b.parquet", "c.parquet"]


def test_a_marker_and_a_manifest_among_the_data_files_are_not_read_as_data(
    spark: Any, tmp_path: Path
) -> None:
    """`marker: READY` (a name Spark does not skip) was listed as a data file and recorded as
    unreadable: with max_unreadable_files 0, every run aborted."""
    folder = tmp_path / "input"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a"]}), folder / "a.parquet")
    (folder / "READY").write_text("")
    (folder / "manifest.json").write_text('{"files": [{"path": "a.parquet", "rows": 1}]}')
    expect = ExpectConfig(marker="READY", manifest=str(folder / "manifest.json"))

    data = read_input(spark, InputConfig("parquet", str(folder), expect=expect))

    assert [Path(unquote(f)).name for f in data.files] == ["a.parquet"]
    assert data.failed == ()


def test_partition_folders_with_a_link_back_up_are_read_once(spark: Any, tmp_path: Path) -> None:
    """The partition columns' types were inferred by a Spark listing of the whole folder, which
    followed the link the walk had not (`loop -> ..`) until the path grew too long."""
    folder = tmp_path / "input"
    for day, ids in (("1", ["a", "b"]), ("2", ["c"])):
        (folder / f"day={day}").mkdir(parents=True)
        pq.write_table(pa.table({"id": ids}), folder / f"day={day}" / "f.parquet")
    (folder / "day=1" / "loop").symlink_to(folder, target_is_directory=True)

    data = read_input(spark, InputConfig(format="parquet", path=str(folder)))

    rows = sorted((r.id, r.day) for r in data.frame.select("id", "day").collect())
    assert rows == [("a", 1), ("b", 1), ("c", 2)]


def test_files_reached_through_symbolic_links_are_read_once(
    spark: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A link to a folder inside the input (`latest -> 2026-11-27`) had its rows scored twice,
    under two `_source_file`s, and a link back up (`loop -> ..`, or to `/`) was walked without
    end. A link to a folder outside the input, or to one Spark skips (`current -> _v2`), is
    input like any other folder; each folder is walked once, however many links reach it."""
    folder = tmp_path / "input"
    day = folder / "2026-11-27"
    hidden = folder / "_v2"
    outside = tmp_path / "elsewhere"
    for made in (day, hidden, outside):
        made.mkdir(parents=True)
    written = [(day / "a.parquet", ["a0", "a1"]), (outside / "b.parquet", ["b0"])]
    for path, ids in [*written, (hidden / "c.parquet", ["c0"])]:
        pq.write_table(pa.table({"id": ids}), path)
    (folder / "latest").symlink_to(day, target_is_directory=True)
    (day / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "root").symlink_to("/", target_is_directory=True)
    (folder / "copy.parquet").symlink_to(day / "a.parquet")
    (folder / "extra").symlink_to(outside, target_is_directory=True)
    (folder / "current").symlink_to(hidden, target_is_directory=True)
    (outside / "up").symlink_to(tmp_path, target_is_directory=True)
    (outside / "again").symlink_to(outside, target_is_directory=True)

    with caplog.at_level(logging.WARNING, logger="lakescore.io"):
        data = read_input(spark, InputConfig(format="parquet", path=str(folder)))

    assert [f.removeprefix("file:") for f in data.files] == [
        str(day / "a.parquet"),
        str(folder / "current" / "c.parquet"),
        str(folder / "extra" / "b.parquet"),
    ]
    assert sorted(row.id for row in data.frame.collect()) == ["a0", "a1", "b0", "c0"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.endswith(
        ": 6 symbolic link(s) lead to files read under another name, or to a folder holding "
        "the input, and were not followed: 2026-11-27/loop, copy.parquet, extra/again, "
        "extra/up, latest, root"
    )


def test_a_folder_reached_by_many_links_is_walked_once(spark: Any, tmp_path: Path) -> None:
    """Day folders each linking to the two before them (`prev`, `prev2`) were walked once per
    path through the links, which doubles with every day: 18 days took 17,691 listings."""
    folder = tmp_path / "input"
    days = [folder / f"d{index:02d}" for index in range(24)]
    for index, day in enumerate(days):
        day.mkdir(parents=True)
        pq.write_table(pa.table({"id": [day.name]}), day / "part.parquet")
        for link, back in (("prev", 1), ("prev2", 2)):
            if index >= back:
                (day / link).symlink_to(days[index - back], target_is_directory=True)

    listed = list_input_files(spark, str(folder))

    assert [p.removeprefix("file:") for p in listed] == [str(d / "part.parquet") for d in days]


@pytest.mark.parametrize("partitions", [("", ""), ("day=1/", "day=2/")])
def test_a_struct_field_all_null_in_a_file_has_no_say_in_the_fields_type(
    spark: Any, tmp_path: Path, partitions: tuple[str, str]
) -> None:
    """pyarrow writes a struct's field that is null on every row with Parquet's null type, which
    Spark reads as int: it made the other file's boolean and date fields text ("true"), in flat
    folders and in partition folders (whose schemas Spark reads)."""
    folder = tmp_path / "input"
    for partition in partitions:
        (folder / partition).mkdir(parents=True, exist_ok=True)
    fields = [("flag", pa.bool_()), ("day", pa.date32())]
    typed = pa.array([{"flag": True, "day": date(2026, 1, 2)}], pa.struct(fields))
    nulls = pa.array([{"flag": None, "day": None}], pa.struct([(n, pa.null()) for n, _ in fields]))
    pq.write_table(pa.table({"id": ["a"], "s": typed}), folder / f"{partitions[0]}a.parquet")
    pq.write_table(pa.table({"id": ["b"], "s": nulls}), folder / f"{partitions[1]}b.parquet")

    data = read_input(spark, InputConfig(format="parquet", path=str(folder)))

    assert dict(data.frame.dtypes)["s"] == "struct<flag:boolean,day:date>"
    assert data.failed == ()
    rows = {r.id: (r.s.flag, r.s.day) for r in data.frame.select("id", "s").collect()}
    assert rows == {"a": (True, date(2026, 1, 2)), "b": (None, None)}
