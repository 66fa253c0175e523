"""Whether a run's columns fit the types an existing table stores them as."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import types as T

from lakescore.config import parse_deployment
from lakescore.model import ModelVersion, OutputColumn, ResolvedModel
from lakescore.table_fit import Clash, Fit, fit, left_null, stats_columns_setting


def schema(**columns: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(name, kind) for name, kind in columns.items()])


def test_no_table_yet_takes_anything() -> None:
    decided = fit(schema(z=T.StringType()), None)
    assert decided.casts == {} and decided.clashes == ()


def test_values_the_table_holds_unchanged_are_cast_to_its_types() -> None:
    table = schema(a=T.LongType(), b=T.DoubleType(), c=T.StringType(), d=T.DoubleType())
    run = schema(a=T.IntegerType(), b=T.FloatType(), C=T.LongType(), d=T.DoubleType())
    decided = fit(run, table)
    assert decided.casts == {"a": T.LongType(), "b": T.DoubleType(), "C": T.StringType()}
    assert decided.clashes == ()


def test_dates_and_times_go_where_they_widen_between_files_and_to_text() -> None:
    """A table stored a column as text where its times differed between files (before they
    widened), or where its first run had it null in every file: every later run failed,
    "table string, run timestamp". A table whose column a mixed run made a timestamp takes a
    later run's zone-less times and dates, as drift.py widens them within one run."""
    table = schema(
        t=T.StringType(),
        n=T.StringType(),
        d=T.TimestampNTZType(),
        e=T.StringType(),
        z=T.TimestampType(),
        y=T.TimestampType(),
    )
    run = schema(
        t=T.TimestampType(),
        n=T.TimestampNTZType(),
        d=T.DateType(),
        e=T.DateType(),
        z=T.TimestampNTZType(),
        y=T.DateType(),
    )
    decided = fit(run, table)
    assert decided.clashes == ()
    assert decided.casts == {
        "t": T.StringType(),
        "n": T.StringType(),
        "d": T.TimestampNTZType(),
        "e": T.StringType(),
        "z": T.TimestampType(),
        "y": T.TimestampType(),
    }
    narrower = schema(d=T.DateType(), n=T.TimestampNTZType())
    assert fit(schema(d=T.TimestampNTZType(), n=T.TimestampType()), narrower).clashes == (
        Clash("d", "date", "timestamp_ntz"),
        Clash("n", "timestamp_ntz", "timestamp"),
    )


def test_values_the_table_cannot_hold_are_clashes() -> None:
    table = schema(a=T.IntegerType(), b=T.DoubleType(), c=T.LongType(), t=T.DateType())
    run = schema(a=T.LongType(), b=T.LongType(), c=T.StringType(), t=T.TimestampType())
    assert fit(run, table).clashes == (
        Clash("a", "int", "bigint"),
        Clash("b", "double", "bigint"),
        Clash("c", "bigint", "string"),
        Clash("t", "date", "timestamp"),
    )


def test_decimals_go_to_text_or_a_decimal_with_as_many_digits_on_either_side() -> None:
    """Decimals that drift between files were text before they widened to one decimal: a table
    from then stores them as text."""
    table = schema(
        a=T.StringType(), b=T.DecimalType(12, 4), c=T.DecimalType(12, 4), d=T.DecimalType(12, 4)
    )
    run = schema(
        a=T.DecimalType(7, 4),
        b=T.DecimalType(10, 2),
        c=T.DecimalType(10, 5),
        d=T.DecimalType(11, 2),
    )
    decided = fit(run, table)
    assert decided.casts == {"a": T.StringType(), "b": T.DecimalType(12, 4)}
    assert decided.clashes == (
        Clash("c", "decimal(12,4)", "decimal(10,5)"),  # a fifth fraction digit
        Clash("d", "decimal(12,4)", "decimal(11,2)"),  # a ninth integer digit
    )


def test_new_columns_are_neither_cast_nor_clashes() -> None:
    decided = fit(schema(a=T.LongType(), new=T.StringType()), schema(a=T.LongType()))
    assert decided.casts == {} and decided.clashes == ()


def test_a_column_no_file_holds_a_value_of_takes_the_tables_type() -> None:
    decided = fit(schema(z=T.StringType()), schema(z=T.BooleanType()), all_null={"z"})
    assert decided.nulls == {"z": T.BooleanType()} and decided.clashes == ()


def test_new_struct_fields_are_left_to_delta_which_adds_them() -> None:
    table = schema(z=T.StructType([T.StructField("a", T.LongType())]))
    run = schema(
        z=T.StructType([T.StructField("a", T.LongType()), T.StructField("b", T.LongType())])
    )
    assert fit(run, table) == Fit({})


def test_nested_fields_the_table_holds_are_cast_in_the_runs_own_field_order() -> None:
    """Delta refuses an int field for a bigint one (DELTA_FAILED_TO_MERGE_FIELDS, after the
    pass); Spark casts structs by position, so the cast keeps the run's field order."""
    table = schema(
        m=T.StructType(
            [T.StructField("count", T.LongType()), T.StructField("name", T.StringType())]
        ),
        l=T.ArrayType(T.DoubleType()),
        k=T.MapType(T.StringType(), T.LongType()),
    )
    run = schema(
        m=T.StructType(
            [T.StructField("extra", T.IntegerType()), T.StructField("COUNT", T.IntegerType())]
        ),
        l=T.ArrayType(T.FloatType()),
        k=T.MapType(T.StringType(), T.NullType()),
    )
    decided = fit(run, table)
    assert decided.casts == {
        "m": T.StructType(
            [T.StructField("extra", T.IntegerType()), T.StructField("COUNT", T.LongType())]
        ),
        "l": T.ArrayType(T.DoubleType()),
        "k": T.MapType(T.StringType(), T.LongType()),
    }
    assert decided.clashes == ()


def test_a_nested_part_the_table_cannot_hold_is_a_clash_named_by_its_path() -> None:
    inner = T.StructType([T.StructField("count", T.IntegerType())])
    table = schema(
        m=T.StructType([T.StructField("s", inner)]),
        l=T.ArrayType(T.LongType()),
        k=T.MapType(T.IntegerType(), T.StringType()),
    )
    run = schema(
        m=T.StructType([T.StructField("s", T.StructType([T.StructField("count", T.LongType())]))]),
        l=T.ArrayType(T.StringType()),
        k=T.MapType(T.LongType(), T.StringType()),
    )
    assert fit(run, table).clashes == (
        Clash("m.s.count", "int", "bigint"),
        Clash("l[]", "bigint", "string"),
        Clash("k (key)", "int", "bigint"),
    )


def test_a_null_column_takes_even_a_nested_type_as_a_typed_null() -> None:
    nested = T.StructType([T.StructField("a", T.LongType())])
    decided = fit(schema(Z=T.StringType()), schema(z=nested), all_null={"z"})
    assert decided.nulls == {"Z": nested} and decided.casts == {}


def test_a_nested_column_goes_to_a_text_column_as_text_and_clashes_with_other_kinds() -> None:
    """Tables written before drifting structs merged hold such a struct as text."""
    nested = T.StructType([T.StructField("a", T.LongType())])
    decided = fit(
        schema(z=nested, y=nested, x=T.LongType()),
        schema(z=T.StringType(), y=T.ArrayType(nested), x=nested),
    )
    assert decided.casts == {"z": T.StringType()}
    assert [clash.column for clash in decided.clashes] == ["y", "x"]


def test_the_tables_columns_a_run_lacks_are_the_ones_left_null() -> None:
    """A renamed output (prediction -> score) leaves the old column null on the run's rows;
    columns match case-insensitively, as Delta matches them, and a new table has none."""
    table = schema(id=T.StringType(), prediction=T.DoubleType(), _run_id=T.StringType())
    run = schema(ID=T.StringType(), score=T.DoubleType(), _run_id=T.StringType())
    assert left_null(run, table) == ("prediction",)
    assert left_null(table, table) == ()
    assert left_null(run, None) == ()


def _stats_setting(stats_columns: list[str], run: T.StructType, tmp_path: Path) -> str:
    raw = {
        "name": "job",
        "model": {"uri": "models:/m/1"},
        "input": {"format": "parquet", "path": "raw"},
        "output": {"path": "out", "stats_columns": stats_columns},
        "quarantine": {"path": "quarantine"},
        "runs": {"path": "runs"},
    }
    model = ResolvedModel(
        ModelVersion("models:/m/1", "models:/m/1", "m", "1", "models:/m/1"),
        "",
        None,
        (OutputColumn("prediction", "double"),),
    )
    return stats_columns_setting(parse_deployment(raw, base_dir=tmp_path), model, run)


def test_stats_columns_named_like_numbers_are_quoted(tmp_path: Path) -> None:
    """Delta parses the setting as SQL identifiers: `2024` unquoted is the number 2024."""
    run = schema(**{"2024": T.LongType(), "1e5": T.DoubleType(), "_run_id": T.StringType()})
    setting = _stats_setting(["2024", "1e5", "_run_id"], run, tmp_path)
    assert setting == "`2024`,`1e5`,_run_id"


def test_stats_columns_match_the_tables_names_without_regard_to_case(tmp_path: Path) -> None:
    run = schema(meter_id=T.StringType(), prediction=T.DoubleType())
    assert _stats_setting(["Meter_ID", "PREDICTION"], run, tmp_path) == "meter_id,prediction"


def test_a_struct_field_no_file_holds_a_value_of_takes_the_tables_type() -> None:
    """Read as text, it would clash with the table's boolean, and a cast of text could not make
    the table's struct: its type is given as null, which the cast rebuilds as a typed null."""
    inner = T.StructType([T.StructField("x", T.IntegerType())])
    run = schema(s=struct(a=T.IntegerType(), flag=T.StringType(), inner=T.StringType()))
    table = schema(s=struct(a=T.LongType(), flag=T.BooleanType(), inner=inner))
    assert [c.column for c in fit(run, table).clashes] == ["s.flag"]

    decided = fit(run, table, null_fields=[("S", "flag"), ("s", "inner")])

    assert decided.clashes == ()
    assert decided.casts == {"s": struct(a=T.LongType(), flag=T.BooleanType(), inner=inner)}
    assert decided.declared == {
        "s": struct(a=T.IntegerType(), flag=T.NullType(), inner=T.NullType())
    }


def test_a_null_struct_field_the_table_lacks_is_added_as_text() -> None:
    """Delta adds the field; as the null type it would be one no other reader knows."""
    run = schema(s=struct(a=T.IntegerType(), flag=T.StringType()))
    table = schema(s=struct(a=T.LongType()))
    decided = fit(run, table, null_fields=[("s", "flag")])
    assert decided.casts == {"s": struct(a=T.LongType(), flag=T.StringType())}


def struct(**fields: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(name, kind) for name, kind in fields.items()])
