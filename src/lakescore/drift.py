"""Schema drift between input files: one canonical schema, and how to project each file onto it.

Pure: takes the schemas read from each file's footer, returns decisions. Columns match across
files case-insensitively (`KWh` and `kwh` are one column). A column whose type differs between
files widens when that loses nothing (int → bigint, float → double, an integer of up to 32 bits
with a float → double) and otherwise becomes a string, so every value survives as read and the
row-level type check names the column when a value does not fit the model. A bigint with a float
is a string: a double holds integers exactly only up to 2**53, and 64-bit keys go beyond.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import types as T

_INTEGRAL = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}
_FLOATING = {"float": 1, "double": 2}


# Field metadata of a column a file declares all-null (Spark still reads it as some type).
ALL_NULL = "lakescore.all_null"


@dataclass(frozen=True)
class CanonicalColumn:
    name: str
    data_type: T.DataType
    all_null: bool = False  # in every file


def canonical_schema(schemas: Mapping[str, T.StructType]) -> list[CanonicalColumn]:
    """One column per case-insensitive name, in first-seen order, with a common type."""
    spellings: dict[str, Counter[str]] = {}
    types: dict[str, list[T.DataType]] = {}
    for schema in schemas.values():
        for field in schema.fields:
            key = field.name.lower()
            spellings.setdefault(key, Counter())[field.name] += 1
            all_null = field.metadata.get(ALL_NULL, False)
            types.setdefault(key, []).append(T.NullType() if all_null else field.dataType)
    return [
        CanonicalColumn(
            spellings[key].most_common(1)[0][0],
            common_type(types[key]),
            all(isinstance(t, T.NullType) for t in types[key]),
        )
        for key in spellings
    ]


def common_type(seen: Sequence[T.DataType]) -> T.DataType:
    """The narrowest type every value of `seen` fits in without loss, else string. Files whose
    column is all null (NullType) have no say; a column no file gives a type is a string."""
    seen = [t for t in seen if not isinstance(t, T.NullType)] or [T.StringType()]
    names = {t.simpleString() for t in seen}
    if len(names) == 1:
        return seen[0]
    if names <= set(_INTEGRAL):
        return T.LongType()
    if names <= set(_INTEGRAL) - {"bigint"} | set(_FLOATING):
        return T.DoubleType()
    return T.StringType()


def source_column(canonical: str, schema: T.StructType) -> str | None:
    """The file's own spelling of a canonical column, or None when the file lacks it."""
    for field in schema.fields:
        if field.name.lower() == canonical.lower():
            return field.name
    return None
