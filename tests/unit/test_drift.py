"""The common type of a column whose type differs between input files."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lakescore.all_null import ALL_NULL
from lakescore.drift import canonical_schema, case_twins, common_type, nested_names
from lakescore.io import _has_timestamp_ntz


@pytest.mark.parametrize(
    ("seen", "common"),
    [
        ([T.IntegerType(), T.LongType()], T.LongType()),
        ([T.FloatType(), T.DoubleType()], T.DoubleType()),
        ([T.IntegerType(), T.DoubleType()], T.DoubleType()),
        ([T.ShortType(), T.FloatType()], T.DoubleType()),
        # A double holds integers exactly only up to 2**53: 64-bit values stay text, exact.
        ([T.LongType(), T.DoubleType()], T.StringType()),
        ([T.IntegerType(), T.LongType(), T.FloatType()], T.StringType()),
        ([T.IntegerType(), T.StringType()], T.StringType()),
        # Decimals widen to the most integer and the most fraction digits, up to 38 in all.
        ([T.DecimalType(3, 2), T.DecimalType(7, 4)], T.DecimalType(7, 4)),
        ([T.DecimalType(10, 0), T.DecimalType(5, 4)], T.DecimalType(14, 4)),
        ([T.DecimalType(38, 0), T.DecimalType(38, 10)], T.StringType()),
        ([T.DecimalType(10, 2), T.LongType()], T.StringType()),
        # Dates and times as Spark widens them (pandas writes zone-less times, Spark zoned ones).
        ([T.TimestampNTZType(), T.TimestampType()], T.TimestampType()),
        ([T.DateType(), T.TimestampNTZType()], T.TimestampNTZType()),
        ([T.DateType(), T.TimestampNTZType(), T.TimestampType()], T.TimestampType()),
        ([T.DateType(), T.StringType()], T.StringType()),
        ([T.TimestampType(), T.LongType()], T.StringType()),
        (
            [T.ArrayType(T.TimestampNTZType()), T.ArrayType(T.TimestampType())],
            T.ArrayType(T.TimestampType()),
        ),
    ],
)
def test_types_widen_only_where_no_value_changes(
    seen: list[T.DataType], common: T.DataType
) -> None:
    assert common_type(seen) == common


def test_a_file_whose_column_is_all_null_has_no_say_in_its_type() -> None:
    """pyarrow writes a column of nulls with Parquet's null type, which Spark reads as int:
    counted, it would make the other files' boolean column a string."""
    flags = T.StructType([T.StructField("z", T.BooleanType())])
    empty = T.StructType([T.StructField("z", T.IntegerType(), True, {ALL_NULL: True})])
    [column] = canonical_schema({"a.parquet": flags, "b.parquet": empty})
    assert (column.data_type, column.all_null) == (T.BooleanType(), False)
    [only_nulls] = canonical_schema({"b.parquet": empty})
    assert (only_nulls.data_type, only_nulls.all_null) == (T.StringType(), True)


def struct(**fields: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(name, data_type) for name, data_type in fields.items()])


def test_structs_merge_their_fields_and_widen_them() -> None:
    """A struct that gained a field became a string before, losing its field names."""
    older = struct(a=T.IntegerType())
    newer = struct(A=T.LongType(), b=T.StringType())
    assert common_type([older, newer]) == struct(a=T.LongType(), b=T.StringType())
    assert common_type([T.ArrayType(older), T.ArrayType(newer)]) == T.ArrayType(
        struct(a=T.LongType(), b=T.StringType())
    )
    assert common_type(
        [T.MapType(T.StringType(), older), T.MapType(T.StringType(), newer)]
    ) == T.MapType(T.StringType(), struct(a=T.LongType(), b=T.StringType()))
    assert common_type([older, T.ArrayType(older)]) == T.StringType()  # different kinds


def test_nested_names_reach_into_arrays_and_map_keys_and_values() -> None:
    keyed = T.MapType(struct(**{"k y": T.IntegerType()}), T.ArrayType(struct(v=T.LongType())))
    assert sorted(nested_names(T.StructField("m", keyed))) == ["m", "m.k y", "m.v"]


def test_case_twins_are_found_at_any_depth() -> None:
    assert case_twins(struct(x=T.LongType(), X=T.LongType())) == ["x", "X"]
    nested = struct(meta=T.ArrayType(struct(a=T.LongType(), A=T.LongType())))
    assert case_twins(nested) == ["meta.a", "meta.A"]
    assert case_twins(struct(meta=struct(a=T.LongType()), a=T.LongType())) == []


def test_a_column_named_with_a_dot_is_no_twin_of_a_nested_field() -> None:
    """`meta.x` beside a struct `meta` holding `x`: Spark reads the file; it is not unreadable."""
    schema = T.StructType(
        [T.StructField("meta.x", T.LongType()), T.StructField("meta", struct(x=T.LongType()))]
    )
    assert case_twins(schema) == []
    assert case_twins(struct(**{"a.b": T.LongType(), "A.B": T.LongType()})) == ["a.b", "A.B"]


def test_timestamp_ntz_is_found_by_type_not_by_name() -> None:
    """The first such column turns Delta's timestampNtz feature on: not a column's name."""
    named_so = struct(event_timestamp_ntz=T.StringType())
    nested = struct(m=T.MapType(T.StringType(), T.ArrayType(struct(t=T.TimestampNTZType()))))
    assert not _has_timestamp_ntz(named_so)
    assert _has_timestamp_ntz(nested)


def test_a_struct_field_all_null_in_a_file_has_no_say_in_its_type() -> None:
    """The same for a struct's field (pyarrow's null type inside a struct): its path is kept
    where no file gives it a value, for a table's own type to take its place."""
    typed = struct(a=T.LongType(), flag=T.BooleanType())
    empty = T.StructType(
        [
            T.StructField("a", T.LongType()),
            T.StructField("flag", T.IntegerType(), True, {ALL_NULL: True}),
        ]
    )
    files = {"a.parquet": T.StructType([T.StructField("s", typed)])}
    files["b.parquet"] = T.StructType([T.StructField("S", empty)])
    [column] = canonical_schema(files)
    assert (column.data_type, column.null_fields) == (typed, ())
    [only_nulls] = canonical_schema({"b.parquet": files["b.parquet"]})
    assert only_nulls.data_type == struct(a=T.LongType(), flag=T.StringType())
    assert (only_nulls.all_null, only_nulls.null_fields) == (False, (("S", "flag"),))
