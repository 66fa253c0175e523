"""Whether a run's rows fit the tables they go to, decided before the pass.

Delta keeps a column's type. A run whose column has another type (the input's `z` became a
bigint, the new model version returns strings) would fail at the commit, after the whole pass,
with Delta's `DELTA_FAILED_TO_MERGE_FIELDS`, which names neither the table nor the types. Values
the table's type holds without loss (an int into a bigint column, a float into a double, a number
into a string) are cast to it; any other difference fails the run before scoring, named.
`fit` and `conform` are pure: schemas in, decisions (or an error naming the columns) out. A run
also learns here which statistics a new predictions table keeps, and is warned (a log line) of
the columns it leaves null.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import pipeline
from lakescore.all_null import Path, as_text_where_null, with_nulls
from lakescore.columns import quoted
from lakescore.config import Deployment
from lakescore.drift import conformed
from lakescore.errors import DeploymentError, TableSchemaError
from lakescore.model import ResolvedModel
from lakescore.redaction import scrub

_log = logging.getLogger(__name__)

_TEXT = "string"
# A run's type -> the table types that hold every value of it unchanged.
_HELD_BY: dict[str, frozenset[str]] = {
    "tinyint": frozenset({"smallint", "int", "bigint", "float", "double", _TEXT}),
    "smallint": frozenset({"int", "bigint", "float", "double", _TEXT}),
    "int": frozenset({"bigint", "double", _TEXT}),
    "bigint": frozenset({_TEXT}),
    "float": frozenset({"double", _TEXT}),
    "double": frozenset({_TEXT}),
    "boolean": frozenset({_TEXT}),
    # As drift.py widens them between files (a date is its midnight; a zone-less time, and a
    # date, are taken in the session's time zone for a timestamp), and as the text it stored
    # before they widened (or where a table's first run had the column null in every file).
    "date": frozenset({"timestamp_ntz", "timestamp", _TEXT}),
    "timestamp_ntz": frozenset({"timestamp", _TEXT}),
    "timestamp": frozenset({_TEXT}),
}


def _holds(target: T.DataType, source: T.DataType) -> bool:
    """Whether a table's column of `target` type holds every value of `source` type."""
    if isinstance(source, T.DecimalType):
        return _holds_decimal(target, source)
    return target.simpleString() in _HELD_BY.get(source.simpleString(), frozenset())


def _holds_decimal(target: T.DataType, decimal: T.DecimalType) -> bool:
    """Text (where an earlier version stored decimals that drifted between files), or a decimal
    with as many integer and fraction digits."""
    if target.simpleString() == _TEXT:
        return True
    return (
        isinstance(target, T.DecimalType)
        and target.scale >= decimal.scale
        and target.precision - target.scale >= decimal.precision - decimal.scale
    )


@dataclass(frozen=True)
class Clash:
    """A column whose values the table's type cannot hold."""

    column: str
    table_type: str
    run_type: str


@dataclass(frozen=True)
class Fit:
    """How a run's frame goes into an existing table: columns to cast, columns that are null on
    every row and take the table's type, and the clashes. A cast column whose struct fields are
    null on every row has its type with those fields null in `declared`: they are rebuilt as
    typed nulls, which a cast of the text they are read as could not always give."""

    casts: Mapping[str, T.DataType]
    clashes: tuple[Clash, ...] = ()
    nulls: Mapping[str, T.DataType] = field(default_factory=dict)
    declared: Mapping[str, T.DataType] = field(default_factory=dict)


_NESTED = (T.StructType, T.ArrayType, T.MapType)


def fit(
    run: T.StructType,
    table: T.StructType | None,
    all_null: Collection[str] = (),
    null_fields: Collection[Path] = (),
) -> Fit:
    """Compare a run's schema with the table's (None: no table yet, anything fits). Columns
    match case-insensitively, as Delta matches them; new columns are added by the write.

    A column in `all_null` (an input column no file holds a value of) takes the table's type,
    and so does a struct field in `null_fields` (its path, the column's name first).
    A struct, array or map going to one of the same kind has the fields and elements the table
    holds without loss cast to the table's types (Delta refuses an int field for a bigint one),
    and keeps its new struct fields, which Delta adds; one going to a text column (where
    lakescore stored a struct that drifted between files, before drifting structs merged) is
    cast to text; any other difference of kind is a clash, named by its path (`meta.count`).
    """
    if table is None:
        return Fit({})
    stored = {column.name.lower(): column.dataType for column in table.fields}
    all_null_names = {name.lower() for name in all_null}
    casts: dict[str, T.DataType] = {}
    nulls: dict[str, T.DataType] = {}
    declared: dict[str, T.DataType] = {}
    clashes: list[Clash] = []
    for column in run.fields:
        target = stored.get(column.name.lower())
        if target is None or target.simpleString() == column.dataType.simpleString():
            continue
        if column.name.lower() in all_null_names:
            nulls[column.name] = target
        elif isinstance(column.dataType, _NESTED) and target.simpleString() == _TEXT:
            casts[column.name] = target  # as text, the way lakescore stored drifting structs
        elif isinstance(target, _NESTED) and type(target) is type(column.dataType):
            below = [p[1:] for p in null_fields if p[0].lower() == column.name.lower()]
            source = with_nulls(column.dataType, below)
            try:
                # A field the table lacks is added as the run has it: text, where null.
                fitted = as_text_where_null(_fitted(target, source, column.name))
            except _Unfit as unfit:
                clashes.append(unfit.clash)
                continue
            if fitted.simpleString() != column.dataType.simpleString():
                casts[column.name] = fitted
                if source.simpleString() != column.dataType.simpleString():
                    declared[column.name] = source
        elif _holds(target, column.dataType):
            casts[column.name] = target
        else:
            clashes.append(
                Clash(column.name, target.simpleString(), column.dataType.simpleString())
            )
    return Fit(casts, tuple(clashes), nulls, declared)


class _Unfit(Exception):
    def __init__(self, clash: Clash) -> None:
        super().__init__(clash)
        self.clash = clash


def _fitted(target: T.DataType, source: T.DataType, path: str) -> T.DataType:
    """`source`, a run's nested type, as the table's `target` takes it: in the run's own field
    order (Spark casts structs by position; Delta then matches fields by name), fields the table
    has widened to its types, new fields as they are. Raises _Unfit for a part it cannot hold."""
    if target.simpleString() == source.simpleString() or isinstance(target, T.NullType):
        return source
    if isinstance(source, T.NullType):  # no file held a value of it: a typed null
        return target
    if isinstance(source, T.StructType) and isinstance(target, T.StructType):
        stored = {f.name.lower(): f.dataType for f in target.fields}
        return T.StructType(
            [
                T.StructField(
                    f.name,
                    f.dataType
                    if f.name.lower() not in stored
                    else _fitted(stored[f.name.lower()], f.dataType, f"{path}.{f.name}"),
                    f.nullable,
                    f.metadata,
                )
                for f in source.fields
            ]
        )
    if isinstance(source, T.ArrayType) and isinstance(target, T.ArrayType):
        element = _fitted(target.elementType, source.elementType, f"{path}[]")
        return T.ArrayType(element, source.containsNull)
    if isinstance(source, T.MapType) and isinstance(target, T.MapType):
        key = _fitted(target.keyType, source.keyType, f"{path} (key)")
        value = _fitted(target.valueType, source.valueType, f"{path} (value)")
        return T.MapType(key, value, source.valueContainsNull)
    if _holds(target, source):  # never a nested type
        return target
    raise _Unfit(Clash(path, target.simpleString(), source.simpleString()))


def left_null(run: T.StructType, table: T.StructType | None) -> tuple[str, ...]:
    """The table's columns that a run's rows lack (matched case-insensitively): Delta stores
    null in them on every row of the run. An output a new model version renamed, or a
    passthrough column the deployment dropped, keeps its old column, empty from then on."""
    if table is None:
        return ()
    written = {column.name.lower() for column in run.fields}
    return tuple(f.name for f in table.fields if f.name.lower() not in written)


def conform(frame: DataFrame, decided: Fit) -> DataFrame:
    """`frame` with the columns `fit` chose cast to the table's types, in the same order."""
    if not decided.casts and not decided.nulls:
        return frame
    return frame.select(*[_conformed(name, decided) for name in frame.columns])


def _conformed(name: str, decided: Fit) -> Column:
    if name in decided.nulls:  # a typed null casts to any type, a struct included
        return F.lit(None).cast(decided.nulls[name]).alias(name)
    column = F.col(quoted(name))
    target = decided.casts.get(name)
    if target is None:
        return column
    if name in decided.declared:
        # Rebuilt only for its null fields: its other values are cast as any column's are.
        return conformed(column, decided.declared[name], target, spark_text=True).alias(name)
    return column.cast(target).alias(name)


# Column types Delta can keep min/max statistics for (data skipping).
_STATS_TYPES = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)


def among(names: Collection[str], columns: Sequence[str]) -> list[str]:
    """The `columns` that `names` holds, matched case-insensitively (respell may have renamed)."""
    wanted = {name.lower() for name in names}
    return [c for c in columns if c.lower() in wanted]


def fields_among(paths: Collection[Path], columns: Sequence[str]) -> list[Path]:
    """The struct fields' `paths` that lie in the `columns`, matched case-insensitively."""
    wanted = {column.lower() for column in columns}
    return [path for path in paths if path[0].lower() in wanted]


def refuse_clashes(decided: Fit, table: str, path: str, model: ResolvedModel) -> Fit:
    """How a run's rows go into an existing table, or an error naming each column the table
    stores as a type that cannot hold its values."""
    if not decided.clashes:
        return decided
    outputs = {o.name for o in model.outputs}
    clashes = "; ".join(
        f"{c.column} is {c.table_type} there and {c.run_type} in this run"
        + (f" (model {model.pinned_uri} returns it)" if c.column in outputs else "")
        for c in decided.clashes
    )
    raise TableSchemaError(
        f"The {table} table at {scrub(path)} cannot take this run's rows: {clashes}. Delta does "
        "not change a column's type: cast the column upstream, or give the deployment a new "
        "table (or migrate this one) for the new type."
    )


def warn_of_empty_columns(
    columns: Sequence[str], deployment: Deployment, model: ResolvedModel
) -> None:
    """Say which predictions columns this run leaves null: after a model version renames its
    output, readers of the old column would otherwise find nulls and no word of why."""
    if columns:
        _log.warning(
            "The predictions table at %s has column(s) %s that this run does not write: they "
            "are null on its rows. Model %s returns %s, and the deployment carries %s.",
            scrub(deployment.output.path),
            ", ".join(columns),
            model.pinned_uri,
            ", ".join(o.name for o in model.outputs),
            ", ".join(pipeline.carried_columns(deployment.input.key, deployment.input.passthrough))
            or "no input columns",
        )


def stats_columns_setting(
    deployment: Deployment, model: ResolvedModel, schema: T.StructType
) -> str:
    """The `delta.dataSkippingStatsColumns` of a new predictions table (output.stats_columns)."""
    types = {f.name: f.dataType for f in schema.fields}
    chosen = deployment.output.stats_columns
    if chosen is None:
        chosen = pipeline.default_stats_columns(model.outputs)
        chosen = tuple(c for c in chosen if isinstance(types[c], _STATS_TYPES))
    # Named as the table spells them: names match without regard to case, as Delta's do.
    spelling = {name.lower(): name for name in types}
    chosen = tuple(spelling.get(c.lower(), c) for c in chosen)
    unknown = [c for c in chosen if c not in types]
    if unknown:
        raise DeploymentError(
            f"output.stats_columns names column(s) {', '.join(unknown)} that the predictions "
            f"table lacks; it has {', '.join(types)}."
        )
    unsupported = [c for c in chosen if not isinstance(types[c], _STATS_TYPES)]
    if unsupported:
        raise DeploymentError(
            f"output.stats_columns: Delta keeps no statistics for column(s) "
            f"{', '.join(f'{c} ({types[c].simpleString()})' for c in unsupported)}; use "
            "numeric, string, date or timestamp columns."
        )
    # Delta takes a name unquoted only if it is ASCII letters, digits and `_` (`\w` is wider),
    # and not one its parser reads as a number (`2024`, `1e5`, `10L`).
    return ",".join(c if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) else quoted(c) for c in chosen)
