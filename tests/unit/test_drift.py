"""The common type of a column whose type differs between input files."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lakescore.drift import common_type


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
    ],
)
def test_types_widen_only_where_no_value_changes(
    seen: list[T.DataType], common: T.DataType
) -> None:
    assert common_type(seen) == common
