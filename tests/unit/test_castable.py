"""Which input types the model's signature types take, decided without Spark."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lakescore.pipeline import _castable


@pytest.mark.parametrize(
    ("source", "target", "castable"),
    [
        (T.IntegerType(), "bigint", True),
        (T.StringType(), "double", True),
        (T.DoubleType(), "string", True),
        (T.StringType(), "timestamp", True),
        (T.DateType(), "timestamp", True),
        (T.TimestampNTZType(), "timestamp", True),
        (T.TimestampType(), "string", True),
        (T.StringType(), "binary", True),
        (T.BinaryType(), "string", True),
        # Spark would read a number as seconds since 1970, or a time as such a number.
        (T.LongType(), "timestamp", False),
        (T.TimestampType(), "bigint", False),
        (T.TimestampType(), "double", False),
        (T.DateType(), "bigint", False),
        # Spark refuses these outright (an analysis error, not a null per row).
        (T.TimestampNTZType(), "bigint", False),
        (T.BooleanType(), "timestamp", False),
        (T.TimestampType(), "boolean", False),
        (T.IntegerType(), "binary", False),
        (T.BinaryType(), "bigint", False),
        (T.ArrayType(T.LongType()), "bigint", False),
    ],
)
def test_a_cast_is_taken_only_where_spark_keeps_the_meaning(
    source: T.DataType, target: str, castable: bool
) -> None:
    assert _castable(source, target) is castable
