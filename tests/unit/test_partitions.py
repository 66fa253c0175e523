"""Which types Spark infers for partition folders' values are kept: only those that read every
value back as written."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lakescore.partitions import kept_types


@pytest.mark.parametrize(
    ("values", "inferred", "kept"),
    [
        (["7", "12", "-3"], T.IntegerType(), T.IntegerType()),
        (["007", "012"], T.IntegerType(), T.StringType()),  # Spark: 7 and 12
        (["+5", "6"], T.IntegerType(), T.StringType()),
        (["-0", "1"], T.IntegerType(), T.StringType()),
        (["0.5", "1.25"], T.DoubleType(), T.DoubleType()),
        (["1.10", "2.0"], T.DoubleType(), T.StringType()),  # Spark: 1.1
        (["3", "0.5"], T.DoubleType(), T.StringType()),  # Spark: 3.0
        (["99999999999999999999", "1"], T.DecimalType(20, 0), T.DecimalType(20, 0)),
        (["1E5", "2"], T.DecimalType(10, 0), T.StringType()),  # Spark: 100000
        (["2026-11-24", "2026-11-25"], T.DateType(), T.DateType()),
        (["A12", "007"], T.StringType(), T.StringType()),
        (["7", "__HIVE_DEFAULT_PARTITION__"], T.IntegerType(), T.IntegerType()),  # a null
    ],
)
def test_a_type_is_kept_only_if_every_value_reads_back_as_written(
    values: list[str], inferred: T.DataType, kept: T.DataType
) -> None:
    names = [f"region=north/Code={value}/part-0.parquet" for value in values]
    types = kept_types({"region": T.StringType(), "Code": inferred}, names)
    assert types == {"region": T.StringType(), "Code": kept}


def test_escaped_folder_values_are_compared_unescaped() -> None:
    """Spark unescapes a folder's value before it types it: `%37` is the 7 it reads back as,
    and `%2B5` the `+5` it does not."""
    names = ["n=%37/a.parquet", "n=12/b.parquet", "m=%2B5/c.parquet", "m=6/d.parquet"]
    assert kept_types({"n": T.IntegerType(), "m": T.IntegerType()}, names) == {
        "n": T.IntegerType(),
        "m": T.StringType(),
    }
