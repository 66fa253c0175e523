"""Partition folders (`key=value/`): which of the types Spark infers for their values to keep.

Pure: from the folder names alone. Spark types each partition column from every folder's value,
and a number or date it parses is stored as such: `meter_id=007` becomes the int 7 (and
`meter_id=7` the same key), `version=1.10` the double 1.1, `code=1E5` the decimal 100000. A type
is kept only when every value reads back as written; otherwise the column is the text of its
folders, as a key must be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from pyspark.sql import types as T

# The folder value Hive and Spark write for a null.
NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"


def kept_types(inferred: Mapping[str, T.DataType], names: Iterable[str]) -> dict[str, T.DataType]:
    """`inferred` (Spark's types of the partition columns), with a string for each column whose
    values in the `key=value` folders of `names` (file paths relative to the input) that type
    would change."""
    written = folder_values(names)
    return {
        column: data_type
        if all(reads_back(value, data_type) for value in written.get(column.lower(), ()))
        else T.StringType()
        for column, data_type in inferred.items()
    }


def folder_values(names: Iterable[str]) -> dict[str, set[str]]:
    """Each partition key's values (lower-cased key, unescaped value), nulls left out."""
    values: dict[str, set[str]] = {}
    for name in names:
        for folder in name.split("/")[:-1]:
            key, equals, value = folder.partition("=")
            if equals and value != NULL_VALUE:
                values.setdefault(unquote(key).lower(), set()).add(unquote(value))
    return values


def reads_back(text: str, data_type: T.DataType) -> bool:
    """Whether a value of `data_type` parsed from `text` is written as `text` again."""
    try:
        if isinstance(data_type, T.IntegralType):
            return str(int(text)) == text
        if isinstance(data_type, T.DecimalType):
            return str(Decimal(text)) == text
        if isinstance(data_type, T.FractionalType):
            return repr(float(text)) == text
        if isinstance(data_type, T.DateType):
            return date.fromisoformat(text).isoformat() == text
    except (ValueError, InvalidOperation):
        return False
    return True  # text, and the types Spark parses as written (booleans, times)
