"""Inputs of the types Arrow and pyfunc disagree on, through a real run: integers with nulls,
fractions for integer inputs, optional inputs the data lacks, and values of redacted columns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scoring_models
from deltalake import DeltaTable
from lakehouses import parquet_lakehouse
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from lakescore.config import load_deployment
from lakescore.errors import DeploymentError, InputError, ScoringError
from lakescore.runner import score

BIG = 2**53 + 1  # not exact as a float64


def read(path: str) -> Any:
    # As objects: pandas' datetime64[ns] cannot hold every time these tables keep.
    return DeltaTable(path).to_pyarrow_table().to_pandas(timestamp_as_object=True)


def save_echo(path: Path, inputs: Schema | None = None) -> Path:
    """EchoModel at `path`: with `inputs`, a signature of them and one long output; else none."""
    outputs = Schema([ColSpec("long")])
    signature = ModelSignature(inputs=inputs, outputs=outputs) if inputs is not None else None
    return Path(scoring_models.save_echo(path, signature))


def echo_model(folder: Path, n_type: str = "long") -> Path:
    """A local pyfunc model: inputs `n` (n_type) and optional `extra` (long), output long `n`."""
    path = folder / f"echo-{n_type}"
    if not path.exists():
        save_echo(path, Schema([ColSpec(n_type, "n"), ColSpec("long", "extra", required=False)]))
    return path


def run(
    tmp_path: Path, table: pa.Table, model: Path, *more: pa.Table, **overrides: Any
) -> tuple[Any, Any, Any]:
    """Write `table` (and `more`) as Parquet files, score them in one batch; return the run's
    record, predictions and quarantine."""
    loaded = load_deployment(parquet_lakehouse(tmp_path, model, table, *more, **overrides))
    from lakescore.session import get_spark

    record = score(get_spark(), loaded, run_id="types").record
    return record, read(loaded.output.path), read(loaded.quarantine.path)


def reasons(quarantine: Any) -> dict[str, list[tuple[str, str | None]]]:
    return {
        row["id"]: [(e["rule"], e["column"]) for e in row["_errors"]]
        for _, row in quarantine.iterrows()
    }


def test_a_null_integer_quarantines_its_row_and_the_rest_of_the_batch_is_scored(
    tmp_path: Path, spark: Any
) -> None:
    """Arrow gives pandas floats for an integer column with a null; pyfunc refuses floats for a
    long input. Only the null row is quarantined, and the others keep every digit."""
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "n": pa.array([BIG, None, 3, 4], pa.int64()),
            "extra": pa.array([1, 2, 3, 4], pa.int64()),
        }
    )
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path))

    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {
        "a": BIG,
        "c": 3,
        "d": 4,
    }
    assert reasons(quarantine) == {"b": [("required_null", "n")]}


def test_an_optional_input_the_data_lacks_is_left_out(tmp_path: Path, spark: Any) -> None:
    """pyfunc accepts a frame without an optional input, so the run scores without it."""
    table = pa.table({"id": ["a", "b"], "n": pa.array([1, 2], pa.int64())})
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path))
    assert record.status == "succeeded"
    assert sorted(predictions["prediction"]) == [1, 2]
    assert quarantine.empty


def test_fractions_for_an_integer_input_are_type_mismatches(tmp_path: Path, spark: Any) -> None:
    """1.7 cast to long would be scored as 1; it is quarantined instead. Whole doubles score."""
    table = pa.table({"id": ["a", "b", "c"], "n": [2.0, 1.7, -2.5]})
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path))
    assert record.status == "succeeded"
    assert list(predictions["prediction"]) == [2]
    assert reasons(quarantine) == {"b": [("type_mismatch", "n")], "c": [("type_mismatch", "n")]}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_an_input_column_named_metadata_does_not_become_the_lineage(
    tmp_path: Path, spark: Any, fmt: str
) -> None:
    """An Auto Loader bronze table keeps the landing file's `_metadata`: the lineage must still
    name the file lakescore read each row from."""
    landing = {"file_path": "s3://landing/meters.json", "file_modification_time": None}
    table = pa.table(
        {"id": ["a", "b", "c"], "n": [1, 2, -3], "_metadata": [landing, landing, landing]}
    )
    settings: dict[str, Any] = {"rules": [{"name": "positive", "expr": "n > 0"}]}
    if fmt == "delta":
        source = tmp_path / "bronze"
        spark.createDataFrame(table.to_pandas()).write.format("delta").save(str(source))
        settings["input"] = {"format": "delta", "path": str(source), "key": "id"}
        table = table.slice(0, 0)  # the Parquet folder is not read
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path), **settings)

    assert record.status == "succeeded" and record.rows_read == 3
    lineage = set(predictions["_source_file"]) | set(quarantine["_source_file"])
    assert len(lineage) >= 1 and all(p.endswith(".parquet") for p in lineage), lineage
    assert all(p.startswith("file:") for p in lineage), lineage
    assert set(predictions["_source_file_modified_at"].map(type)) == {datetime}
    # The input's own column is kept as read, in the quarantine.
    assert list(quarantine["_metadata"].map(lambda m: m["file_path"])) == [landing["file_path"]]


@pytest.mark.parametrize("name", ["_source_file", "_RUN_ID"])
def test_an_input_column_named_like_a_lineage_column_is_refused_before_scoring(
    tmp_path: Path, spark: Any, name: str
) -> None:
    table = pa.table({"id": ["a"], "n": [1], name: ["x"]})
    drifted = pa.table({"id": ["b"], "n": [2], name: ["y"], "extra": [1.0]})  # two schemas
    with pytest.raises(DeploymentError, match=f"{name} clash with lineage"):
        run(
            tmp_path,
            table,
            echo_model(tmp_path),
            drifted,
            input={"format": "parquet", "path": "raw", "key": "id", "passthrough": ["id", name]},
        )


@pytest.mark.parametrize("name", ["_source_file", "_Source_File"])
def test_a_delta_input_with_a_column_named_like_a_lineage_column_is_refused_before_scoring(
    tmp_path: Path, spark: Any, name: str
) -> None:
    """Read, such an input holds the name twice: its own column and the lineage's."""
    source = tmp_path / "bronze"
    rows = [("a", 1, "landing.json")]
    spark.createDataFrame(rows, ["id", "n", name]).write.format("delta").save(str(source))
    with pytest.raises(DeploymentError, match=f"column\\(s\\) {name} clash with lineage"):
        run(
            tmp_path,
            pa.table({"id": pa.array([], pa.string())}),
            echo_model(tmp_path),
            input={"format": "delta", "path": str(source), "key": "id"},
        )


def test_statistics_on_a_column_named_in_another_alphabet(tmp_path: Path, spark: Any) -> None:
    """Delta refused `zählerstand` unquoted in delta.dataSkippingStatsColumns, after the pass."""
    table = pa.table({"id": ["a", "b"], "n": [1, 2], "zählerstand": ["x", "y"]})
    record, predictions, _ = run(
        tmp_path,
        table,
        echo_model(tmp_path),
        input={
            "format": "parquet",
            "path": "raw",
            "key": "id",
            "passthrough": ["id", "zählerstand"],
        },
        output={"path": "out/predictions", "stats_columns": ["_run_id", "zählerstand"]},
    )
    assert record.status == "succeeded" and list(predictions["zählerstand"]) == ["x", "y"]
    properties = DeltaTable(str(tmp_path / "out" / "predictions")).metadata().configuration
    assert properties["delta.dataSkippingStatsColumns"] == "_run_id,`zählerstand`"


@pytest.mark.parametrize(
    ("stored", "signed"),
    [(pa.string(), True), (pa.binary(), True), (pa.string(), False)],
    ids=["text", "binary-cast-to-text", "text-without-signature"],
)
def test_text_that_is_not_utf8_is_quarantined_without_quoting_it(
    tmp_path: Path, spark: Any, stored: pa.DataType, signed: bool
) -> None:
    """One such value failed Arrow's conversion of its batch, and the run, quoting the bytes
    even of a `quarantine.redact` column; a model without a signature gets text columns as
    read, so they are checked too."""
    values = [b"caf\xc3\xa9", b"secret-caf\xe9", b"ok"]
    offsets = pa.array([0, 5, 16, 18], pa.int32()).buffers()[1]
    names = pa.Array.from_buffers(stored, 3, [None, offsets, pa.py_buffer(b"".join(values))])
    table = pa.table({"id": ["a", "b", "c"], "n": [1, 2, 3], "name": names})
    inputs = Schema([ColSpec("long", "n"), ColSpec("string", "name")])
    model = save_echo(tmp_path / "echo-with-name", inputs if signed else None)
    quarantine_settings = {"path": "out/quarantine", "redact": ["name"]}
    record, predictions, quarantine = run(tmp_path, table, model, quarantine=quarantine_settings)

    assert record.status == "succeeded" and sorted(predictions["id"]) == ["a", "c"]
    assert reasons(quarantine) == {"b": [("type_mismatch", "name")]}
    [error] = quarantine["_errors"].iloc[0]
    assert error["message"] == "name value is not valid UTF-8 text"


@pytest.mark.parametrize("value", ["123-45-6789", "13"])
def test_values_of_redacted_columns_stay_out_of_error_messages(
    tmp_path: Path, spark: Any, value: str
) -> None:
    """A redacted column is hashed in the quarantine, and its value appears in no message: not in
    a type mismatch ("123-45-6789" is no long), nor in a model error quoting its input (13)."""
    table = pa.table({"id": ["a", "b"], "n": ["1", value]})
    record, predictions, quarantine = run(
        tmp_path,
        table,
        echo_model(tmp_path),
        quarantine={"path": "out/quarantine", "redact": ["n"]},
    )
    assert record.status == "succeeded"
    assert list(predictions["prediction"]) == [1]
    [row] = quarantine.to_dict("records")
    assert row["n"].startswith("sha256:")
    messages = " ".join(e["message"] for e in row["_errors"])
    assert value not in messages
    assert row["_errors"][0]["rule"] == ("type_mismatch" if value != "13" else "model_error")


def test_an_input_column_delta_cannot_store_is_named_before_scoring(
    tmp_path: Path, spark: Any
) -> None:
    """A space in a column name would fail the quarantine commit after the whole pass; the run
    fails first, naming the column."""
    table = pa.table({"id": ["a"], "n": pa.array([1], pa.int64()), "meter reading": [1.0]})
    with pytest.raises(InputError, match="'meter reading'"):
        run(tmp_path, table, echo_model(tmp_path))


def test_a_file_with_columns_differing_only_in_case_is_recorded_and_the_rest_scored(
    tmp_path: Path, spark: Any
) -> None:
    """Spark failed the whole read on such a file, naming neither it nor the columns."""
    good = pa.table({"id": ["a", "b"], "n": pa.array([1, 2], pa.int64())})
    twins = pa.table({"id": ["c"], "n": pa.array([3], pa.int64()), "x": [1], "X": [2]})
    nested = pa.table({"id": ["d"], "n": pa.array([4], pa.int64()), "meta": [{"x": 1, "X": 2}]})
    record, predictions, _ = run(tmp_path, good, echo_model(tmp_path), twins, nested)

    assert record.status == "succeeded" and sorted(predictions["id"]) == ["a", "b"]
    errors = {Path(f["path"]).name: f["error"] for f in record.files_failed}
    assert set(errors) == {"part-1.parquet", "part-2.parquet"}
    assert errors["part-1.parquet"].startswith("holds columns x and X, whose names differ only")
    assert errors["part-2.parquet"].startswith("holds columns meta.x and meta.X, whose names")


def test_partition_folders_mixed_with_other_folders_are_named(tmp_path: Path, spark: Any) -> None:
    """Spark's error said "Conflicting directory structures detected" and named no folder."""
    deployment_file = parquet_lakehouse(tmp_path, echo_model(tmp_path))
    for folder, n in (("day=1", 1), ("Late", 2)):  # Spark lower-cases the folders it names
        (tmp_path / "raw" / folder).mkdir()
        table = pa.table({"id": [f"k{n}"], "n": pa.array([n], pa.int64())})
        pq.write_table(table, tmp_path / "raw" / folder / "part.parquet")
    with pytest.raises(InputError, match="mixes partition folders") as raised:
        score(spark, load_deployment(deployment_file), run_id="mixed")
    assert "data files are in Late, day=1." in str(raised.value)


def test_a_struct_that_gains_fields_stays_a_struct_in_the_tables(
    tmp_path: Path, spark: Any
) -> None:
    """Files whose struct column differs (a field added, in a list too) merge the structs, and
    a later run adding another field widens the predictions table's struct (it was text, and a
    table already holding the struct failed the run at its commit)."""

    def table(ids: list[str], meta: list[dict[str, Any]]) -> pa.Table:
        n = pa.array(range(len(ids)), pa.int64())
        return pa.table({"id": ids, "n": n, "meta": meta, "tags": [[m] for m in meta]})

    older = table(["a"], [{"source": 1}])
    newer = table(["b"], [{"source": 2, "region": "north"}])
    carried = {"format": "parquet", "path": "raw", "key": "id", "passthrough": ["meta", "tags"]}
    record, predictions, _ = run(tmp_path, older, echo_model(tmp_path), newer, input=carried)

    assert record.status == "succeeded"
    rows = predictions.set_index("id")
    assert rows.loc["a", "meta"] == {"source": 1, "region": None}
    assert rows.loc["b", "meta"] == {"source": 2, "region": "north"}
    assert list(rows.loc["b", "tags"]) == [{"source": 2, "region": "north"}]

    (tmp_path / "raw" / "part-2.parquet").unlink(missing_ok=True)
    pq.write_table(
        table(["c"], [{"source": 3, "region": "south", "line": 7}]),
        tmp_path / "raw" / "part-2.parquet",
    )
    later = score(spark, load_deployment(tmp_path / "deployment.yaml"), run_id="later").record
    assert later.status == "succeeded"
    stored = read(str(tmp_path / "out" / "predictions")).set_index("_run_id")
    assert stored.loc["later"].set_index("id").loc["c", "meta"] == {
        "source": 3,
        "region": "south",
        "line": 7,
    }


def test_a_nested_field_delta_cannot_store_is_named_before_scoring(
    tmp_path: Path, spark: Any
) -> None:
    """Delta checks the names of nested fields too (in structs, arrays and maps)."""
    headers = [[{"user agent": "curl"}]]
    table = pa.table({"id": ["a"], "n": pa.array([1], pa.int64()), "request": headers})
    with pytest.raises(InputError, match=r"'request\.user agent'"):
        run(tmp_path, table, echo_model(tmp_path))


def test_a_64_bit_key_that_another_file_stores_as_double_keeps_every_digit(
    tmp_path: Path, spark: Any
) -> None:
    """One file has the key as int64, another as float64 (pandas makes one of a column with a
    NaN): widened to double, every key above 2**53 would be silently changed. As text, the
    float file's whole keys read as integers (`2`, not `2.0` or `1.2345678E7`), as the other
    file's do, and its other values as Spark writes them."""
    exact = pa.table({"id": pa.array([BIG], pa.int64()), "n": pa.array([1], pa.int64())})
    floated = pa.table(
        {
            "id": pa.array([2.0, -12345678.0, 2.5, float("nan"), 2.0**59], pa.float64()),
            "n": pa.array([2, 3, 4, 5, 6], pa.int64()),
        }
    )
    record, predictions, _ = run(tmp_path, exact, echo_model(tmp_path), floated)
    assert record.status == "succeeded"
    # 2**59 exactly: through a decimal, Double.toString would end it in ...500 on a recent JDK.
    assert set(predictions["id"]) == {str(BIG), "2", "-12345678", "2.5", "NaN", str(2**59)}


def test_whole_doubles_in_a_column_another_file_has_as_bigint_fill_an_integer_input(
    tmp_path: Path, spark: Any
) -> None:
    """The drifted column is text, and `2.0` is no bigint to Spark: every row of the float file
    was quarantined as type_mismatch, although read alone it would have scored."""
    first = pa.table({"id": ["a"], "n": pa.array([1], pa.int64())})
    second = pa.table({"id": ["b", "c"], "n": pa.array([2.0, 2.5], pa.float64())})
    record, predictions, quarantine = run(tmp_path, first, echo_model(tmp_path), second)
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {"a": 1, "b": 2}
    assert reasons(quarantine) == {"c": [("type_mismatch", "n")]}


def test_whole_decimals_in_a_column_another_file_has_as_bigint_fill_an_integer_input(
    tmp_path: Path, spark: Any
) -> None:
    """Made text, the decimal file's 2.00 was "2.00", no bigint to Spark: every row of it was
    quarantined as type_mismatch. A whole decimal is written as its integer, as a double is."""
    first = pa.table({"id": ["a"], "n": pa.array([1], pa.int64())})
    second = pa.table({"id": ["b", "c"], "n": pa.array([Decimal("2.00"), Decimal("2.50")])})
    record, predictions, quarantine = run(tmp_path, first, echo_model(tmp_path), second)
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {"a": 1, "b": 2}
    assert reasons(quarantine) == {"c": [("type_mismatch", "n")]}


def test_columns_spelled_in_another_case_are_named_as_the_deployment_and_signature_say(
    tmp_path: Path, spark: Any
) -> None:
    """Spark matches names case-insensitively, pyfunc exactly: the files' `N` and `ID` are the
    signature's `n` and the deployment's key `id`, in the model's input and in both tables."""
    table = pa.table({"ID": ["a", "b"], "N": pa.array([1, None], pa.int64())})
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path))
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {"a": 1}
    assert reasons(quarantine) == {"b": [("required_null", "n")]}
    assert "n" in quarantine.columns and "N" not in quarantine.columns


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (pa.array([[1]], pa.list_(pa.int64())), "array<bigint>"),
        (pa.array([date(2026, 11, 26)], pa.date32()), "date"),
        (pa.array([datetime(2026, 11, 26)], pa.timestamp("us", tz="UTC")), "timestamp"),
        (pa.array([datetime(2026, 11, 26)], pa.timestamp("us")), "timestamp_ntz"),
    ],
)
def test_an_input_type_spark_cannot_cast_is_named(
    tmp_path: Path, spark: Any, values: pa.Array, named: str
) -> None:
    """An array, a date or a time for a long input is one sentence naming the column and both
    types, not Spark's analysis error (timestamp_ntz), nor a time turned into seconds since 1970
    (timestamp)."""
    table = pa.table({"id": ["a"], "n": values})
    with pytest.raises(InputError, match=f"n is {named}, which Spark cannot cast to bigint"):
        run(tmp_path, table, echo_model(tmp_path))


def test_nan_in_an_optional_double_input_reaches_the_model_as_a_null_there_does(
    tmp_path: Path, spark: Any
) -> None:
    """Both are NaN to pandas, and a column is optional in a signature inferred from an example
    that held NaN: the stored NaN was quarantined while the stored null was scored. A required
    double input still quarantines NaN, and an optional one infinity."""
    model = tmp_path / "optional-double"
    save_echo(
        model,
        Schema(
            [ColSpec("long", "n"), ColSpec("double", "x", required=False), ColSpec("double", "y")]
        ),
    )
    nan, inf = float("nan"), float("inf")
    table = pa.table(
        {"id": ["a", "b", "c", "d", "e"], "n": [1, 2, 3, 4, 5], "x": [1.5, nan, None, 1.0, inf]}
    ).append_column("y", pa.array([1.0, 1.0, 1.0, nan, 1.0]))
    record, predictions, quarantine = run(tmp_path, table, model)
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {
        "a": 1,
        "b": 2,
        "c": 3,
    }
    assert reasons(quarantine) == {"d": [("nan", "y")], "e": [("infinite", "x")]}


def test_a_model_without_a_signature_gets_nan_and_only_rules_are_checked(
    tmp_path: Path, spark: Any
) -> None:
    """Without a signature nothing says NaN is wrong (many models take it): the row is scored.
    A rule still quarantines. The model takes every column as read, a struct whose field names
    (`user-agent`) its type string cannot spell included."""
    path = save_echo(tmp_path / "unsigned")
    request = [{"user-agent": "curl/8"}] * 3
    table = pa.table({"id": ["a", "b", "c"], "n": [1.0, float("nan"), -1.0], "req": request})
    rules = [{"name": "non_negative", "expr": "n >= 0 OR isnan(n)"}]
    record, predictions, quarantine = run(tmp_path, table, path, rules=rules)
    assert record.status == "succeeded"
    scored = dict(zip(predictions["id"], predictions["prediction"], strict=True))
    assert scored["a"] == 1.0 and scored["b"] != scored["b"]  # NaN
    assert reasons(quarantine) == {"c": [("non_negative", None)]}
    assert list(quarantine["req"]) == [{"user-agent": "curl/8"}]


def test_a_column_named_with_a_backtick_is_read_like_any_other(tmp_path: Path, spark: Any) -> None:
    """Its name is quoted as Spark SQL quotes it; the file was recorded as unreadable ("cannot
    reconcile its schema"), a parse error of the unescaped name."""
    table = pa.table({"id": ["a", "b"], "n": [1, None], "odd`name": ["x", "y"]})
    record, predictions, quarantine = run(tmp_path, table, echo_model(tmp_path))
    assert record.status == "succeeded" and record.files_failed == []
    assert list(predictions["id"]) == ["a"]
    assert reasons(quarantine) == {"b": [("required_null", "n")]}
    assert list(quarantine["odd`name"]) == ["y"]


def test_scoring_result_type_types_the_prediction_of_a_model_without_output_schema(
    tmp_path: Path, spark: Any
) -> None:
    """A classifier logged without a signature returns labels. Typed double by default, its run
    fails naming scoring.result_type; with `result_type: string` the labels are stored."""
    path = save_echo(tmp_path / "labels")
    table = pa.table({"id": ["a", "b"], "n": ["fault", "ok"]})
    record, predictions, _ = run(tmp_path / "typed", table, path, scoring={"result_type": "string"})
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["prediction"], strict=True)) == {
        "a": "fault",
        "b": "ok",
    }
    with pytest.raises(ScoringError, match=r"not double.*scoring.result_type"):
        run(tmp_path / "default", table, path)


@pytest.mark.parametrize("signed", [True, False], ids=["signature", "no-signature"])
def test_a_time_pandas_cannot_hold_is_quarantined_not_fatal(
    tmp_path: Path, spark: Any, signed: bool
) -> None:
    """9999-12-31 (a common "no end" sentinel) does not fit pandas' datetime64[ns]; sent to
    Python it would fail its whole batch and the run. It is quarantined as a type mismatch."""
    inputs = Schema([ColSpec("long", "n"), ColSpec("datetime", "t")])
    path = save_echo(tmp_path / "timed", inputs if signed else None)
    times = [datetime(2026, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)]
    table = pa.table(
        {
            "id": ["a", "b"],
            "n": pa.array([1, 2], pa.int64()),
            "t": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )
    record, predictions, quarantine = run(tmp_path, table, path)
    assert record.status == "succeeded"
    assert list(predictions["id"]) == ["a"]
    assert reasons(quarantine) == {"b": [("type_mismatch", "t")]}


def test_a_session_writing_int96_timestamps_still_leaves_tables_delta_rs_reads(
    tmp_path: Path, spark: Any
) -> None:
    """Spark's default Parquet timestamp type is INT96, which delta-rs and polars read as
    nanoseconds: a notebook's session left a quarantine holding 9999-12-31 that they could not
    read. A run writes its tables with standard timestamps and puts the session's setting back."""
    setting = "spark.sql.parquet.outputTimestampType"
    before = spark.conf.get(setting)
    sentinel = datetime(9999, 12, 31, tzinfo=UTC)
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "n": pa.array([1, 2, None], pa.int64()),  # c is quarantined, b scored
            "t": pa.array(
                [datetime(2026, 1, 1, tzinfo=UTC), sentinel, sentinel],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    spark.conf.set(setting, "INT96")
    try:
        record, predictions, quarantine = run(
            tmp_path,
            table,
            echo_model(tmp_path),
            input={"format": "parquet", "path": "raw", "key": "id", "passthrough": ["t"]},
        )
        assert spark.conf.get(setting) == "INT96"
    finally:
        spark.conf.set(setting, before)
    assert record.status == "succeeded"
    assert dict(zip(predictions["id"], predictions["t"], strict=True))["b"] == sentinel
    assert quarantine["t"].tolist() == [sentinel]


def test_a_rule_that_raises_on_a_row_is_named(tmp_path: Path, spark: Any) -> None:
    """Spark's ANSI mode makes `n / d` raise on d = 0: the run fails naming the rule and the
    fix, not with Spark's bare error. Written with try_divide, the row is quarantined."""
    table = pa.table(
        {
            "id": ["a", "b"],
            "n": pa.array([1, 2], pa.int64()),
            "d": pa.array([1, 0], pa.int64()),
            "d2": pa.array([1, 1], pa.int64()),
        }
    )
    rules = [{"name": "ratio_positive", "expr": "n / d > 0"}]
    with pytest.raises(DeploymentError, match=r"Rule ratio_positive \(n / d > 0\) raised"):
        run(tmp_path / "plain", table, echo_model(tmp_path), rules=rules)

    rules = [{"name": "ratio_positive", "expr": "try_divide(n, d) > 0"}]
    record, _, quarantine = run(tmp_path / "try", table, echo_model(tmp_path), rules=rules)
    assert record.status == "succeeded"
    assert reasons(quarantine) == {"b": [("ratio_positive", None)]}

    # Spark evaluates a division two rules share once, and points at the first rule's: both
    # are named, not only the one that guards it (which alone cannot raise). A rule dividing by
    # another column (`d2`) does not hold that part.
    rules = [
        {"name": "guarded", "expr": "d = 0 OR n / d > 0"},
        {"name": "unguarded", "expr": "n / d > 0"},
        {"name": "unrelated", "expr": "n / d2 > 0"},
    ]
    with pytest.raises(DeploymentError) as raised:
        run(tmp_path / "both", table, echo_model(tmp_path), rules=rules)
    assert str(raised.value).startswith(
        "Rule guarded (d = 0 OR n / d > 0) or unguarded (n / d > 0) raised an error on a row "
        "instead of returning true or false (they share the part Spark points at): "
        "[DIVIDE_BY_ZERO]"
    )


def test_a_raising_rule_over_a_redacted_column_does_not_quote_its_value(
    tmp_path: Path, spark: Any
) -> None:
    """Spark's cast error quotes the value; the run's error (kept in the runs table) must not,
    when the rule reads a quarantine.redact column."""
    table = pa.table({"id": ["a"], "n": pa.array([1], pa.int64()), "code": ["SECRET-7"]})
    rules = [{"name": "code_positive", "expr": "cast(code AS INT) > 0"}]
    quarantine = {"path": "out/quarantine", "redact": ["code"]}
    with pytest.raises(DeploymentError, match=r"\[CAST_INVALID_INPUT\] \(message withheld") as info:
        run(tmp_path, table, echo_model(tmp_path), rules=rules, quarantine=quarantine)
    assert "SECRET-7" not in str(info.value)
    [recorded] = read(str(tmp_path / "out" / "runs"))["error"]
    assert "(message withheld" in recorded and "SECRET-7" not in recorded


def test_times_with_and_without_a_time_zone_and_dates_across_files_stay_times(
    tmp_path: Path, spark: Any
) -> None:
    """pandas writes zone-less times (timestamp_ntz), Spark zoned ones: a column that had both
    across files became text in the tables, and a date with them too. They widen as Spark
    widens them: a zone-less time in the session's time zone, a date at its midnight there."""

    def table(key: str, seen: pa.Array) -> pa.Table:
        return pa.table({"id": [key], "n": pa.array([1], pa.int64()), "seen_at": seen})

    zoned = table("zoned", pa.array([datetime(2026, 1, 4, 5, 6, 7, tzinfo=UTC)]))
    naive = table("naive", pa.array([datetime(2026, 1, 2, 3, 4, 5)], pa.timestamp("us")))
    day = table("day", pa.array([date(2026, 1, 3)]))
    carried = {"format": "parquet", "path": "raw", "key": "id", "passthrough": ["seen_at"]}
    record, predictions, _ = run(tmp_path, zoned, echo_model(tmp_path), naive, day, input=carried)

    assert record.status == "succeeded" and record.rows_scored == 3
    stored = spark.read.format("delta").load(str(tmp_path / "out" / "predictions"))
    assert dict(stored.dtypes)["seen_at"] == "timestamp"
    local = ZoneInfo(spark.conf.get("spark.sql.session.timeZone"))
    assert dict(zip(predictions["id"], predictions["seen_at"], strict=True)) == {
        "zoned": datetime(2026, 1, 4, 5, 6, 7, tzinfo=UTC),
        "naive": datetime(2026, 1, 2, 3, 4, 5, tzinfo=local),
        "day": datetime(2026, 1, 3, tzinfo=local),
    }


def test_a_column_null_in_every_file_of_the_first_run_takes_times_as_text_later(
    tmp_path: Path, spark: Any
) -> None:
    """pyarrow writes a column of nulls with Parquet's null type: the first run stored it as
    text, and every later run whose files held times in it failed before scoring ("table
    string, run timestamp")."""
    nulls = pa.table({"id": ["a"], "n": pa.array([1], pa.int64()), "seen_at": pa.nulls(1)})
    carried = {"format": "parquet", "path": "raw", "key": "id", "passthrough": ["seen_at"]}
    record, _, _ = run(tmp_path, nulls, echo_model(tmp_path), input=carried)
    assert record.status == "succeeded"

    when = datetime(2026, 1, 2, 3, 4, 5)
    later = pa.table(
        {
            "id": ["b"],
            "n": pa.array([2], pa.int64()),
            "seen_at": pa.array([when], pa.timestamp("us")),
        }
    )
    pq.write_table(later, tmp_path / "raw" / "part-0.parquet")
    again = score(spark, load_deployment(tmp_path / "deployment.yaml"), run_id="later").record

    assert again.status == "succeeded"
    stored = read(str(tmp_path / "out" / "predictions")).set_index("id")
    assert stored.loc["b", "seen_at"] == "2026-01-02 03:04:05"
