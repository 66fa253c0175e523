"""Columns and struct fields a Parquet file declares all-null, found in its schema's text form
(as parquet-mr's MessageType prints it) and marked in the Spark schema."""

from __future__ import annotations

from pyspark.sql import types as T

from lakescore.all_null import ALL_NULL, declared, marked, marked_paths, null_paths, with_nulls

_FOOTER = """message spark_schema {
  optional binary id (STRING) = 1;
  optional int32 empty (UNKNOWN) = 2;
  optional group s = 3 {
    optional int32 flag (UNKNOWN) = 4;
    optional int64 a;
    required group inner {
      optional int32 day (UNKNOWN);
    }
  }
  optional group tags (LIST) {
    repeated group list {
      optional int32 element (UNKNOWN);
    }
  }
  optional group m (MAP) {
    repeated group key_value {
      required binary key (STRING);
      optional int32 value (UNKNOWN);
    }
  }
  repeated group legacy {
    optional int32 x (UNKNOWN);
  }
  optional group reading (kWh) = -3 {
    optional int32 peak (UNKNOWN) = -4;
  }
  optional int32 after (UNKNOWN);
}
"""


def test_null_fields_are_found_at_the_top_and_in_structs_not_in_lists_or_maps() -> None:
    assert null_paths(_FOOTER) == {
        ("empty",),
        ("s", "flag"),
        ("s", "inner", "day"),
        ("reading (kWh)", "peak"),  # a name's own parentheses are no annotation
        ("after",),  # the groups before it closed
    }


def test_marked_fields_are_declared_null_and_read_back_as_marked() -> None:
    inner = T.StructType([T.StructField("day", T.IntegerType())])
    s = T.StructType(
        [
            T.StructField("flag", T.IntegerType()),
            T.StructField("a", T.LongType()),
            T.StructField("inner", inner),
        ]
    )
    schema = T.StructType([T.StructField("empty", T.IntegerType()), T.StructField("s", s)])
    paths = {("empty",), ("s", "flag"), ("s", "inner", "day")}

    marks = marked(schema, paths)

    assert marked_paths(marks) == paths
    assert marks.fields[0].metadata == {ALL_NULL: True}
    assert declared(marks.fields[0]) == T.NullType()
    assert declared(marks.fields[1]).simpleString() == (
        "struct<flag:void,a:bigint,inner:struct<day:void>>"
    )
    # As a table fit sees a run's column: the fields named, whatever their case, are null.
    assert with_nulls(s, [("FLAG",), ("inner", "Day")]) == declared(marks.fields[1])
