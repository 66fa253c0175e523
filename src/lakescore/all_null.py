"""Columns and struct fields a Parquet file declares all-null, and the types they stand for.

pyarrow writes a column, or a struct's field, that is null on every row with Parquet's null
logical type (UNKNOWN). Spark reads it as int, which says nothing of the type the other files
(or the table) give it: taken at its word, it made a boolean or date column of the other files
text, and clashed with a table's boolean. lakescore marks such fields (in their metadata) when it
reads a footer, and schema drift gives them no say. Pure: schemas and text in, schemas out.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pyspark.sql import types as T

# Field metadata of a column or struct field a file declares all-null.
ALL_NULL = "lakescore.all_null"

# A line of a Parquet schema's text form: a group (a struct, or a list or map) that opens, and a
# field of the UNKNOWN (null) logical type; either may carry a field id (`= 7`). A struct's name
# may end in parentheses of its own (`reading (kWh)`): only these annotations are taken as one.
_GROUP = re.compile(
    r"^\s*(?P<repetition>optional|required|repeated) group (?P<name>.+?)"
    r"(?: \((?P<annotation>LIST|MAP|MAP_KEY_VALUE)\))?(?: = -?\d+)? \{$"
)
_NULL_FIELD = re.compile(r"^\s*(?:optional|required) \w+ (?P<name>.+) \(UNKNOWN\)(?: = -?\d+)?;$")

Path = tuple[str, ...]


def null_paths(parquet_schema: str) -> set[Path]:
    """The paths (`("s", "flag")`) of the fields a Parquet schema's text form declares null,
    at the top level and inside structs. Fields inside lists and maps are left out: their Spark
    types hold no field to mark."""
    found: set[Path] = set()
    groups: list[str | None] = []  # None: a list or map, whose fields are not marked
    for line in parquet_schema.splitlines()[1:]:  # the first line opens the message
        group = _GROUP.match(line)
        if group:
            struct = group["repetition"] != "repeated" and group["annotation"] is None
            groups.append(group["name"] if struct else None)
        elif line.strip() == "}":
            if groups:
                groups.pop()
        else:
            field = _NULL_FIELD.match(line)
            if field and None not in groups:
                found.add((*[g for g in groups if g is not None], field["name"]))
    return found


def marked(schema: T.StructType, paths: Collection[Path]) -> T.StructType:
    """`schema` with the fields at `paths` marked all-null."""
    if not paths:
        return schema
    fields = []
    for field in schema.fields:
        below = [p[1:] for p in paths if len(p) > 1 and p[0] == field.name]
        if (field.name,) in paths:
            field = T.StructField(field.name, field.dataType, field.nullable, {ALL_NULL: True})
        elif below and isinstance(field.dataType, T.StructType):
            nested = marked(field.dataType, below)
            field = T.StructField(field.name, nested, field.nullable, field.metadata)
        fields.append(field)
    return T.StructType(fields)


def marked_paths(schema: T.StructType) -> set[Path]:
    """The paths of the fields `schema` marks all-null."""
    found: set[Path] = set()
    for field in schema.fields:
        if field.metadata.get(ALL_NULL):
            found.add((field.name,))
        elif isinstance(field.dataType, T.StructType):
            found |= {(field.name, *p) for p in marked_paths(field.dataType)}
    return found


def declared(field: T.StructField) -> T.DataType:
    """The field's type as the file declares it: null (NullType) where it is marked all-null,
    at any depth of structs, its read type elsewhere."""
    if field.metadata.get(ALL_NULL):
        return T.NullType()
    if isinstance(field.dataType, T.StructType):
        return T.StructType(
            [T.StructField(f.name, declared(f), f.nullable) for f in field.dataType.fields]
        )
    return field.dataType


def null_fields(data_type: T.DataType) -> list[Path]:
    """The paths of the struct fields (at any depth) that a declared type holds as null."""
    if not isinstance(data_type, T.StructType):
        return []
    found: list[Path] = []
    for field in data_type.fields:
        if isinstance(field.dataType, T.NullType):
            found.append((field.name,))
        found += [(field.name, *p) for p in null_fields(field.dataType)]
    return found


def as_text_where_null(data_type: T.DataType) -> T.DataType:
    """A declared type with text where it holds null: a column, or a struct's field, that no file
    gives a value is a string, until a table gives it its own type."""
    if isinstance(data_type, T.NullType):
        return T.StringType()
    if isinstance(data_type, T.StructType):
        return T.StructType(
            [
                T.StructField(f.name, as_text_where_null(f.dataType), f.nullable, f.metadata)
                for f in data_type.fields
            ]
        )
    return data_type


def with_nulls(data_type: T.DataType, paths: Collection[Path]) -> T.DataType:
    """`data_type` with NullType at the struct fields `paths` name (case-insensitively)."""
    if not isinstance(data_type, T.StructType) or not paths:
        return data_type
    fields = []
    for f in data_type.fields:
        below = [p[1:] for p in paths if p[0].lower() == f.name.lower()]
        if () in below:
            fields.append(T.StructField(f.name, T.NullType(), f.nullable, f.metadata))
        else:
            fields.append(
                T.StructField(f.name, with_nulls(f.dataType, below), f.nullable, f.metadata)
            )
    return T.StructType(fields)
