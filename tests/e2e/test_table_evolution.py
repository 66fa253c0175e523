"""Weekly runs into the same tables while the input's and the model's types change: values the
tables' types hold are cast to them, others fail the run before the pass, named."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scoring_models
import yaml
from deltalake import DeltaTable
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from lakescore.config import load_deployment
from lakescore.errors import TableSchemaError
from lakescore.runner import score


def echo_model(folder: Path, output_type: str, output_name: str | None = None) -> Path:
    """A pyfunc that returns its input `n` (a string) as its prediction, typed `output_type`
    (and named `output_name`; unnamed, lakescore calls it `prediction`)."""
    path = folder / f"echo-{output_type}-{output_name}"
    if path.exists():
        return path
    inputs, outputs = Schema([ColSpec("string", "n")]), Schema([ColSpec(output_type, output_name)])
    return Path(scoring_models.save_echo(path, ModelSignature(inputs=inputs, outputs=outputs)))


def run_week(tmp_path: Path, run_id: str, table: pa.Table, model: Path, **output: Any) -> Any:
    """Score `table` (the week's one file) into the same tables as every earlier week."""
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    for old in raw.iterdir():
        old.unlink()
    pq.write_table(table, raw / "part-0.parquet")
    deployment = {
        "name": "weekly",
        "model": {"uri": str(model)},
        "input": {"format": "parquet", "path": "raw", "key": "id"},
        "output": {"path": "out/predictions", **output},
        "quarantine": {"path": "out/quarantine"},
        "runs": {"path": "out/runs"},
    }
    file = tmp_path / "deployment.yaml"
    file.write_text(yaml.safe_dump(deployment))
    from lakescore.session import get_spark

    return score(get_spark(), load_deployment(file), run_id=run_id).record


def week(z: pa.Array) -> pa.Table:
    """Two rows: `b` is quarantined (n is null), so both tables get rows; `z` is unused."""
    return pa.table({"id": ["a", "b"], "n": ["1", None], "z": z})


def test_a_narrower_column_is_cast_to_the_type_the_tables_store(tmp_path: Path, spark: Any) -> None:
    """Last week z was a bigint, this week an int, and the model returns int instead of long:
    the tables keep bigint and every row lands."""
    first = run_week(
        tmp_path, "w1", week(pa.array([1, 2], pa.int64())), echo_model(tmp_path, "long")
    )
    assert first.status == "succeeded"
    second = run_week(
        tmp_path, "w2", week(pa.array([3, 4], pa.int32())), echo_model(tmp_path, "integer")
    )
    assert second.status == "succeeded"
    assert (second.rows_scored, second.rows_quarantined) == (1, 1)
    predictions = DeltaTable(str(tmp_path / "out/predictions")).to_pyarrow_table()
    quarantine = DeltaTable(str(tmp_path / "out/quarantine")).to_pyarrow_table()
    assert predictions.schema.field("prediction").type == pa.int64()
    assert sorted(predictions.column("prediction").to_pylist()) == [1, 1]
    assert quarantine.schema.field("z").type == pa.int64()
    assert sorted(quarantine.column("z").to_pylist()) == [2, 4]


def test_a_narrower_nested_field_is_cast_and_a_new_one_added(tmp_path: Path, spark: Any) -> None:
    """Last week z.count was a bigint, this week an int with a field `extra` before it: Delta
    would refuse the commit after the pass (DELTA_FAILED_TO_MERGE_FIELDS); the field is cast,
    `extra` is added, and each value lands in its own field."""
    last = pa.array([{"count": 1}, {"count": 2}], pa.struct([("count", pa.int64())]))
    this = pa.array(
        [{"extra": 7, "count": 3}, {"extra": 8, "count": 4}],
        pa.struct([("extra", pa.int32()), ("count", pa.int32())]),
    )
    model = echo_model(tmp_path, "long")
    assert run_week(tmp_path, "w1", week(last), model).status == "succeeded"
    second = run_week(tmp_path, "w2", week(this), model)
    assert second.status == "succeeded"
    assert (second.rows_scored, second.rows_quarantined) == (1, 1)
    quarantine = DeltaTable(str(tmp_path / "out/quarantine")).to_pyarrow_table()
    assert quarantine.schema.field("z").type == pa.struct(
        [("count", pa.int64()), ("extra", pa.int32())]
    )
    assert sorted(map(str, quarantine.column("z").to_pylist())) == [
        "{'count': 2, 'extra': None}",
        "{'count': 4, 'extra': 8}",
    ]


@pytest.mark.parametrize(
    ("z", "output_type", "named"),
    [
        (pa.array(["x", "y"]), "long", "z is bigint there and string in this run"),
        (pa.array([1, 2], pa.int64()), "string", "prediction is bigint there and string"),
    ],
    ids=["input-column", "model-output"],
)
def test_a_column_the_tables_cannot_hold_fails_before_scoring_and_names_it(
    tmp_path: Path, spark: Any, z: pa.Array, output_type: str, named: str
) -> None:
    """Delta would refuse the commit after the whole pass with an error naming neither table
    nor types; the run fails before scoring, naming the table, the column and both types, and
    neither table changes."""
    run_week(tmp_path, "w1", week(pa.array([1, 2], pa.int64())), echo_model(tmp_path, "long"))
    versions = {
        table: DeltaTable(str(tmp_path / "out" / table)).version()
        for table in ("predictions", "quarantine")
    }
    with pytest.raises(TableSchemaError, match=named) as failure:
        run_week(tmp_path, "w2", week(z), echo_model(tmp_path, output_type))
    assert str(tmp_path / "out") in str(failure.value)
    assert {
        table: DeltaTable(str(tmp_path / "out" / table)).version() for table in versions
    } == versions
    # Before scoring: no row was counted, and no executor scored any.
    record = failure.value.run_record  # type: ignore[attr-defined]
    assert record["rows_read"] is None and record["executors"] == []


def test_stats_columns_apply_when_the_table_is_created_not_to_a_later_model(
    tmp_path: Path, spark: Any
) -> None:
    """output.stats_columns names `prediction`; the next model version calls its output
    `score`. The setting applied when the table was made, so the run goes on."""
    stats = {"stats_columns": ["_run_id", "prediction"]}
    first = run_week(tmp_path, "w1", week(pa.array([1, 2])), echo_model(tmp_path, "long"), **stats)
    renamed = echo_model(tmp_path, "long", "score")
    second = run_week(tmp_path, "w2", week(pa.array([1, 2])), renamed, **stats)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    settings = DeltaTable(str(tmp_path / "out" / "predictions")).metadata().configuration
    assert settings["delta.dataSkippingStatsColumns"] == "_run_id,prediction"


def test_a_renamed_model_output_leaves_the_old_column_null_and_says_so(
    tmp_path: Path, spark: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The next model version calls its output `score`: Delta adds the column and stores null
    in `prediction` on the week's rows. The run says which column it leaves empty, and why."""
    with caplog.at_level(logging.WARNING, logger="lakescore"):
        run_week(tmp_path, "w1", week(pa.array([1, 2])), echo_model(tmp_path, "long"))
        assert "does not write" not in caplog.text  # a new table: nothing is left empty
        run_week(tmp_path, "w2", week(pa.array([1, 2])), echo_model(tmp_path, "long", "score"))
    warned = [r.getMessage() for r in caplog.records if "does not write" in r.getMessage()]
    assert len(warned) == 1
    assert "column(s) prediction that this run does not write" in warned[0]
    assert "returns score" in warned[0]
    rows = DeltaTable(str(tmp_path / "out/predictions")).to_pyarrow_table().to_pylist()
    assert {(r["_run_id"], r["prediction"], r["score"]) for r in rows} == {
        ("w1", 1, None),
        ("w2", None, 1),
    }


def test_a_week_with_nothing_for_a_table_records_no_version_of_it(
    tmp_path: Path, spark: Any
) -> None:
    """Delta skips a write with no rows to add or replace; the run record then holds no version
    for that table, not the table's latest one, which is another run's commit (the Change Data
    Feed of that version would show the other run's rows as this run's)."""
    model = echo_model(tmp_path, "long")
    run_week(tmp_path, "w1", week(pa.array([1, 2])), model)  # both tables get rows
    clean = run_week(tmp_path, "w2", pa.table({"id": ["c"], "n": ["3"], "z": [3]}), model)
    bad = run_week(tmp_path, "w3", pa.table({"id": ["d"], "n": [None], "z": [4]}), model)
    predictions = DeltaTable(str(tmp_path / "out/predictions"))
    quarantine = DeltaTable(str(tmp_path / "out/quarantine"))
    assert (clean.status, bad.status) == ("succeeded", "succeeded")
    assert (clean.rows_scored, clean.rows_quarantined) == (1, 0)
    assert (clean.output_version, clean.quarantine_version) == (predictions.version(), None)
    assert (bad.rows_scored, bad.rows_quarantined) == (0, 1)
    assert (bad.output_version, bad.quarantine_version) == (None, quarantine.version())
    metadata = {h["version"]: h.get("userMetadata") or "" for h in predictions.history()}
    assert '"w2"' in metadata[clean.output_version]


def test_a_week_whose_file_has_a_column_of_nulls_keeps_the_tables_type(
    tmp_path: Path, spark: Any
) -> None:
    """pyarrow writes a column that is null on every row with Parquet's null type, and Spark
    reads that as int: a sparse boolean column, empty one week, must not fail the run."""
    model = echo_model(tmp_path, "long")
    first = run_week(tmp_path, "w1", week(pa.array([True, False])), model)
    second = run_week(tmp_path, "w2", week(pa.array([None, None], pa.null())), model)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    quarantine = DeltaTable(str(tmp_path / "out/quarantine")).to_pyarrow_table()
    assert quarantine.schema.field("z").type == pa.bool_()
    assert sorted(quarantine.column("z").to_pylist(), key=str) == [False, None]


def test_a_struct_column_may_gain_a_field_and_be_null_for_a_whole_week(
    tmp_path: Path, spark: Any
) -> None:
    """Delta adds a struct's new fields itself, so lakescore leaves nested types to it; a week
    whose file has the struct column all null stores typed nulls, not text."""
    model = echo_model(tmp_path, "long")
    one = pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())]))
    two = pa.array([{"a": 3, "b": 4}] * 2, pa.struct([("a", pa.int64()), ("b", pa.int64())]))
    weeks = [one, two, pa.array([None, None], pa.null())]
    records = [run_week(tmp_path, f"w{n}", week(z), model) for n, z in enumerate(weeks, 1)]
    assert [r.status for r in records] == ["succeeded"] * 3
    quarantine = DeltaTable(str(tmp_path / "out/quarantine")).to_pyarrow_table()
    assert quarantine.schema.field("z").type == pa.struct([("a", pa.int64()), ("b", pa.int64())])


def test_an_input_column_of_nulls_named_like_the_models_output_does_not_hide_a_clash(
    tmp_path: Path, spark: Any
) -> None:
    """The week's file carries an empty `prediction` column: it says nothing about the type
    the new model version returns, which the predictions table cannot hold."""
    run_week(tmp_path, "w1", week(pa.array([1, 2])), echo_model(tmp_path, "long"))
    empty = week(pa.array([1, 2])).append_column("prediction", pa.array([None, None], pa.null()))
    with pytest.raises(TableSchemaError, match="prediction is bigint there and double"):
        run_week(tmp_path, "w2", empty, echo_model(tmp_path, "double"))


def test_a_week_whose_struct_field_is_all_null_keeps_the_tables_type_of_it(
    tmp_path: Path, spark: Any
) -> None:
    """A struct's field null on every row of the week's file (Parquet's null type, read as int)
    must not become text and clash with the table's boolean: a sparse flag inside a struct."""
    model = echo_model(tmp_path, "long")
    flagged = pa.struct([("a", pa.int64()), ("flag", pa.bool_())])
    unset = pa.struct([("a", pa.int64()), ("flag", pa.null())])
    first = week(pa.array([{"a": 1, "flag": True}, {"a": 2, "flag": False}], flagged))
    second = week(pa.array([{"a": 3, "flag": None}, {"a": 4, "flag": None}], unset))
    records = [run_week(tmp_path, f"w{n}", t, model) for n, t in enumerate([first, second], 1)]
    assert [r.status for r in records] == ["succeeded"] * 2
    quarantine = DeltaTable(str(tmp_path / "out/quarantine")).to_pyarrow_table()
    assert quarantine.schema.field("z").type == flagged
    assert sorted((z["a"], z["flag"]) for z in quarantine.column("z").to_pylist()) == [
        (2, False),
        (4, None),
    ]
