"""Schema drift between input files: one canonical schema, and how to project each file onto it.

Pure: takes the schemas read from each file's footer, returns decisions. Columns match across
files case-insensitively (`KWh` and `kwh` are one column). A column whose type differs between
files widens when that loses nothing (int → bigint, float → double, an integer of up to 32 bits
with a float → double) and otherwise becomes a string, so every value survives as read and the
row-level type check names the column when a value does not fit the model. A bigint with a float
is a string: a double holds integers exactly only up to 2**53, and 64-bit keys go beyond; a
whole double then reads as the integer it is (`2`, not Spark's `2.0` or `1.2345678E7`), so that
it is the same key as the other files' and an integer input still takes it; so does a whole
decimal (`2`, not `2.00`) made text. Decimals of different precisions widen to one that holds
them all (up to 38 digits). Structs, arrays and maps of the same kind merge: a struct gains the
fields any file gives it (null where a file lacks them), and nested types widen by the same
rules. Dates and times widen as Spark widens them: a date with a zone-less time (timestamp_ntz)
is a zone-less time, anything with a timestamp a timestamp (a zone-less time taken in the
session's time zone, a date at its midnight there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore.all_null import Path, as_text_where_null, declared, null_fields

_INTEGRAL = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}
_FLOATING = {"float": 1, "double": 2}
_BIGINT_LIMIT = 2.0**63  # the first double a bigint cannot hold


@dataclass(frozen=True)
class CanonicalColumn:
    name: str
    data_type: T.DataType
    all_null: bool = False  # in every file
    # The paths (column name first) of its struct fields that every file declares all-null:
    # text in `data_type`, they take a table's own type.
    null_fields: tuple[Path, ...] = ()


def canonical_schema(schemas: Mapping[str, T.StructType]) -> list[CanonicalColumn]:
    """One column per case-insensitive name, in first-seen order, with a common type. A column
    or struct field a file declares all-null has no say in it."""
    spellings: dict[str, Counter[str]] = {}
    types: dict[str, list[T.DataType]] = {}
    for schema in schemas.values():
        for field in schema.fields:
            key = field.name.lower()
            spellings.setdefault(key, Counter())[field.name] += 1
            types.setdefault(key, []).append(declared(field))
    columns = []
    for key, spelled in spellings.items():
        name = spelled.most_common(1)[0][0]
        merged = _common(types[key])
        columns.append(
            CanonicalColumn(
                name,
                as_text_where_null(merged),
                isinstance(merged, T.NullType),
                tuple((name, *path) for path in null_fields(merged)),
            )
        )
    return columns


def common_type(seen: Sequence[T.DataType]) -> T.DataType:
    """A type every value of `seen` fits in without loss: the type itself when all agree, bigint
    for a mix of integer types, double for floats with integers narrower than bigint, the
    decimal holding every decimal of `seen` (up to 38 digits), Spark's wider type of dates and
    times, else string (structs, arrays and maps field by field). Files whose column is all
    null (NullType) have no say; a column or struct field no file gives a type is a string."""
    return as_text_where_null(_common(seen))


def _common(seen: Sequence[T.DataType]) -> T.DataType:
    """As common_type, with NullType where no file gives a type."""
    seen = [t for t in seen if not isinstance(t, T.NullType)]
    if not seen:
        return T.NullType()
    names = {t.simpleString() for t in seen}
    if len(names) == 1:
        return seen[0]
    if all(isinstance(t, T.StructType) for t in seen):
        return _merged_struct([t for t in seen if isinstance(t, T.StructType)])
    if all(isinstance(t, T.ArrayType) for t in seen):
        return T.ArrayType(common_type([t.elementType for t in seen]))  # type: ignore[attr-defined]
    if all(isinstance(t, T.MapType) for t in seen):
        keys = common_type([t.keyType for t in seen])  # type: ignore[attr-defined]
        return T.MapType(keys, common_type([t.valueType for t in seen]))  # type: ignore[attr-defined]
    if names <= set(_INTEGRAL):
        return T.LongType()
    if all(isinstance(t, T.DecimalType) for t in seen):
        widest = _holding_every([t for t in seen if isinstance(t, T.DecimalType)])
        if widest is not None:
            return widest
    if names <= set(_INTEGRAL) - {"bigint"} | set(_FLOATING):
        return T.DoubleType()
    if names <= _TIMES:
        # Spark's wider type: pandas writes zone-less times (timestamp_ntz) where Spark writes
        # timestamps; a date is its midnight.
        return T.TimestampType() if "timestamp" in names else T.TimestampNTZType()
    return T.StringType()


_TIMES = {"date", "timestamp", "timestamp_ntz"}


def _holding_every(seen: Sequence[T.DecimalType]) -> T.DecimalType | None:
    """The decimal type with the most integer digits and the most fraction digits of `seen`,
    if it fits in Spark's 38 digits."""
    scale = max(t.scale for t in seen)
    digits = max(t.precision - t.scale for t in seen) + scale
    return T.DecimalType(digits, scale) if digits <= 38 else None


def _merged_struct(seen: Sequence[T.StructType]) -> T.StructType:
    """Every field any of the structs has (matched case-insensitively, in first-seen order),
    each with the common type of its occurrences."""
    spellings: dict[str, str] = {}
    types: dict[str, list[T.DataType]] = {}
    for struct in seen:
        for field in struct.fields:
            spellings.setdefault(field.name.lower(), field.name)
            types.setdefault(field.name.lower(), []).append(field.dataType)
    return T.StructType([T.StructField(spellings[key], _common(types[key])) for key in spellings])


def conformed(
    value: Column, source: T.DataType, target: T.DataType, spark_text: bool = False
) -> Column:
    """`value`, of a file's `source` type, as the canonical `target` type. Spark casts a struct
    only to one with as many fields, so structs (also inside arrays and maps) are rebuilt field
    by field, with nulls for the fields this file lacks. A whole float or double as text is
    written as the integer it is (`2`, not `2.0`), and so is a whole decimal (`2`, not `2.00`),
    unless `spark_text` (as Spark's cast writes them: a table's casts, see table_fit.py).
    A `source` of NullType (a field the file declares all-null, see all_null.py) is a typed
    null, whatever type Spark read it as."""
    if source.simpleString() == target.simpleString():
        return value
    if isinstance(source, T.NullType):
        return F.lit(None).cast(target)
    if isinstance(source, T.StructType) and isinstance(target, T.StructType):
        fields = {f.name.lower(): f for f in source.fields}
        parts = []
        for field in target.fields:
            own = fields.get(field.name.lower())
            part = (
                conformed(value.getField(own.name), own.dataType, field.dataType, spark_text)
                if own is not None
                else F.lit(None).cast(field.dataType)
            )
            parts.append(part.alias(field.name))
        return F.when(value.isNull(), F.lit(None).cast(target)).otherwise(F.struct(*parts))
    if isinstance(source, T.ArrayType) and isinstance(target, T.ArrayType):
        return F.transform(
            value,
            lambda item: conformed(item, source.elementType, target.elementType, spark_text),
        )
    if isinstance(source, T.MapType) and isinstance(target, T.MapType):
        keyed = F.transform_keys(
            value, lambda key, _: conformed(key, source.keyType, target.keyType, spark_text)
        )
        return F.transform_values(
            keyed,
            lambda _, item: conformed(item, source.valueType, target.valueType, spark_text),
        )
    if spark_text:
        return value.cast(target)
    if isinstance(target, T.StringType) and isinstance(source, T.DoubleType | T.FloatType):
        # A whole double below 2**63 is a bigint exactly (a decimal would go through
        # Double.toString, whose digits past the 17th depend on the JDK).
        whole = (value % 1 == 0) & (F.abs(value) < _BIGINT_LIMIT)
        return F.when(whole, value.cast("bigint").cast("string")).otherwise(value.cast(target))
    if isinstance(target, T.StringType) and isinstance(source, T.DecimalType) and source.scale:
        # The same for a whole decimal: `2`, not `2.00` (a decimal's floor is one of scale 0).
        whole = value == F.floor(value)
        return F.when(whole, F.floor(value).cast("string")).otherwise(value.cast(target))
    return value.cast(target)


def nested_names(field: T.StructField) -> list[str]:
    """A column's name and those of the fields nested in it, through structs, arrays and map
    keys and values (`meta.user agent`): Delta and Spark check them all."""
    return [".".join(path) for path in nested_paths(field)]


def nested_paths(field: T.StructField, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """As nested_names, each as its parts: a column named `meta.x` is not the field x of `meta`."""
    path = (*prefix, field.name)
    found = [path]
    pending = [field.dataType]
    while pending:
        data_type = pending.pop()
        if isinstance(data_type, T.ArrayType):
            pending.append(data_type.elementType)
        elif isinstance(data_type, T.MapType):
            pending += [data_type.keyType, data_type.valueType]
        elif isinstance(data_type, T.StructType):
            found += [p for f in data_type.fields for p in nested_paths(f, path)]
    return found


def case_twins(schema: T.StructType) -> list[str]:
    """The first two names of a schema, nested ones included, that differ only in case (`x` and
    `X`, `meta.a` and `meta.A`): Spark cannot read such a file."""
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    for path in (p for f in schema.fields for p in nested_paths(f)):
        folded = tuple(part.lower() for part in path)
        if folded in seen:
            return [".".join(seen[folded]), ".".join(path)]
        seen[folded] = path
    return []


def source_column(canonical: str, schema: T.StructType) -> str | None:
    """The file's own spelling of a canonical column, or None when the file lacks it."""
    for field in schema.fields:
        if field.name.lower() == canonical.lower():
            return field.name
    return None
