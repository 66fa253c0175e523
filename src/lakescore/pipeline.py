"""DataFrame in, DataFrame out: the pure core of a run. No reads, no writes.

read → validate → score (one pass, staged) → split into predictions and quarantine. The caller
(runner.py) writes the staged frame once, so each input row is read once and each valid row
reaches the model once; counts, predictions and quarantine all come from the staged rows.
Values fixed for the whole run (run id, model, time) are not staged: the commits add them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import columns as C
from lakescore.config import Rule
from lakescore.drift import nested_names
from lakescore.errors import DeploymentError, InputError, reserved_columns_error
from lakescore.model import InputColumn, OutputColumn, ResolvedModel, spark_data_type
from lakescore.redaction import redact_columns
from lakescore.validate import (
    ERRORS_TYPE,
    TIME_TYPES,
    Check,
    cast_inputs,
    columns_read,
    error_struct,
    failures,
    missing_inputs,
    passes,
    rule_checks,
    signature_checks,
)

# Characters Delta refuses in column names unless the table uses column mapping.
_DELTA_INVALID_NAME = re.compile(r"[ ,;{}()\n\t=]")
_WORKING_PREFIX = "__lakescore_"  # working columns numbered per run (rule values, raw inputs)
VALID = f"{_WORKING_PREFIX}valid"  # passed every quarantine check; the model scores only these rows
_STOPS = "__stops"  # the fail rules a row broke
_PREDICTION_STRUCT = "__prediction"
_WORKING_COLUMNS = (C.ERRORS, C.FLAGS, C.SCORE_ERROR, C.FAILED_INPUT, C.EXECUTOR, C.TASK)


@dataclass(frozen=True)
class RunStamp:
    """Values fixed on the driver for the whole run: executors compute nothing nondeterministic."""

    run_id: str
    at: datetime
    model: ResolvedModel


@dataclass(frozen=True)
class Validated:
    """The input as read, plus VALID, `_errors`, `_warnings` and the fail rules a row broke."""

    frame: DataFrame
    checks: tuple[Check, ...]
    input_columns: tuple[str, ...]


def user_columns(df: DataFrame) -> list[str]:
    """The input's own columns, without the lineage columns added when it was read."""
    return [c for c in df.columns if c not in C.SOURCE_LINEAGE]


def respell(df: DataFrame, wanted: Sequence[str]) -> DataFrame:
    """Name the input's columns as the deployment and the model's signature spell them.

    Spark matches column names case-insensitively, but pyfunc, the key/passthrough/redact lists
    and the quarantine's columns match them exactly: a file's `KWh_30d` becomes the signature's
    `kwh_30d` here, once. A column that `wanted` spells two ways is an error naming both.
    """
    present = {c.lower(): c for c in user_columns(df)}
    spellings: dict[str, set[str]] = {}
    for name in wanted:
        spellings.setdefault(name.lower(), set()).add(name)
    renames: dict[str, str] = {}
    for lower, names in spellings.items():
        current = present.get(lower)
        if current is None or names == {current}:
            continue
        if len(names) > 1:
            raise DeploymentError(
                f"Input column {current} is spelled {' and '.join(sorted(names))} among the "
                "model's signature and the deployment's input.key, input.passthrough and "
                "quarantine.redact; spell it one way."
            )
        renames[current] = names.pop()
    return df.withColumnsRenamed(renames) if renames else df


def model_inputs(model: ResolvedModel, df: DataFrame, key: str | None) -> tuple[InputColumn, ...]:
    """The model's inputs; without a signature, every user column except the key, as read."""
    if model.inputs is not None:
        return model.inputs
    types = dict(df.dtypes)
    return tuple(
        InputColumn(name, types[name], required=False) for name in user_columns(df) if name != key
    )


def refuse_reserved_names(df: DataFrame) -> None:
    """Fail before any work when an input column is named like one lakescore adds, in any case
    (Spark resolves names case-insensitively): its values would be taken for lakescore's, or
    every later reference to the name would be ambiguous. (Names of lineage columns are refused
    when the input is read, before the lineage is added.)"""
    reserved = _reserved_names()
    own = [
        c
        for c in user_columns(df)
        if c.lower() in reserved or c.lower().startswith(_WORKING_PREFIX)
    ]
    if own:
        raise reserved_columns_error(own)


def check_input_columns(
    df: DataFrame,
    inputs: Sequence[InputColumn],
    key: str | None,
    passthrough: Sequence[str],
    outputs: Sequence[OutputColumn],
    model_label: str,
) -> None:
    """Fail before any work when required columns are missing or names collide."""
    columns = user_columns(df)
    missing = missing_inputs(inputs, columns)
    if missing:
        raise InputError(
            f"Input lacks column(s) {', '.join(missing)} required by model {model_label}; "
            f"it has {', '.join(columns)}."
        )
    kept = [f for f in df.schema.fields if f.name in set(columns)]
    unwritable = [n for f in kept for n in nested_names(f) if _DELTA_INVALID_NAME.search(n)]
    if unwritable:
        raise InputError(
            "Input column(s) "
            + ", ".join(repr(c) for c in unwritable)
            + " hold a space or one of ,;{}()= which Delta tables without column mapping do "
            "not allow, and the quarantine keeps every input column: rename them upstream."
        )
    fields = {f.name: f.dataType for f in df.schema.fields}
    for spec in inputs:
        if spec.name in fields and not _castable(fields[spec.name], spec.spark_type):
            raise InputError(
                f"Input column {spec.name} is {fields[spec.name].simpleString()}, which Spark "
                f"cannot cast to {spec.spark_type} (or not without changing what it means), "
                f"the type model {model_label} takes."
            )
    carried = carried_columns(key, passthrough)
    lacking = [
        f"{setting} names {', '.join(absent)}"
        for setting, named in (
            ("input.key", [key] if key else []),
            ("input.passthrough", passthrough),
        )
        if (absent := [c for c in named if c not in columns])
    ]
    if lacking:  # the deployment's setting, like quarantine.redact and the rules: exit 2
        raise DeploymentError(
            f"{'; '.join(lacking)}, which the input lacks; it has {', '.join(columns)}."
        )
    _check_output_names(outputs, model_label)
    _refuse_change_feed_names(carried, outputs, model_label)
    predicted = {o.name.lower() for o in outputs}
    clash = [c for c in carried if c.lower() in predicted]
    if clash:
        raise DeploymentError(
            f"Passthrough column(s) {', '.join(clash)} have the same name as the model's "
            "prediction column(s) (Delta compares names without regard to case)."
        )


# Change Data Feed's own columns: Delta refuses them in a table with the feed on, as the
# predictions table has (an input built from a change feed may have kept them).
_CHANGE_FEED_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


def _refuse_change_feed_names(
    carried: Sequence[str], outputs: Sequence[OutputColumn], model_label: str
) -> None:
    """Before the pass: Delta would refuse them only at the commit, naming neither setting."""
    named = [
        f"{where} {name}"
        for where, names in (
            ("input.key/passthrough carries", carried),
            (f"model {model_label} returns", [o.name for o in outputs]),
        )
        for name in names
        if name.lower() in _CHANGE_FEED_COLUMNS
    ]
    if named:
        raise DeploymentError(
            f"{'; '.join(named)}, a name Delta keeps for its Change Data Feed, which the "
            "predictions table has on: leave it out of passthrough, or rename it upstream "
            "or in the model's output signature."
        )


def _check_output_names(outputs: Sequence[OutputColumn], model_label: str) -> None:
    """Refuse, before the pass, prediction names the predictions table cannot hold; Delta would
    refuse them only at the commit, after every row was scored, without naming the model."""
    unwritable = [o.name for o in outputs if _DELTA_INVALID_NAME.search(o.name)]
    if unwritable:
        raise DeploymentError(
            "Output column(s) "
            + ", ".join(repr(c) for c in unwritable)
            + f" of model {model_label} hold a space or one of "
            + ",;{}()= which Delta tables without column mapping do not allow: rename them in "
            "the model's output signature."
        )
    reserved = {name.lower() for name in _reserved_names()}
    lineage = [o.name for o in outputs if o.name.lower() in reserved]
    if lineage:
        raise DeploymentError(
            f"Output column(s) {', '.join(lineage)} of model {model_label} clash with "
            "lakescore's lineage or working columns: rename them in the model's output "
            "signature."
        )
    spellings: dict[str, list[str]] = {}
    for output in outputs:
        spellings.setdefault(output.name.lower(), []).append(output.name)
    twice = [" and ".join(names) for names in spellings.values() if len(names) > 1]
    if twice:
        raise DeploymentError(
            f"Output columns {'; '.join(twice)} of model {model_label} differ only in case, "
            "which one Delta table cannot hold."
        )


_TIMES = ("date", *TIME_TYPES)


def _castable(source: T.DataType, target: str) -> bool:
    """Whether Spark can cast a column of `source` type to the signature's (atomic) `target`
    and keep its meaning: not a nested value, nor bytes to anything but text, nor anything but
    text to bytes; a time only to a time or text, and only those to a time (Spark would count a
    number as seconds since 1970, and a time as such a number). Decided from the schema, without
    an analysis round trip to Spark for each input column."""
    if source.simpleString() == target:
        return True  # a model without a signature takes each column as read, nested ones too
    if isinstance(source, T.ArrayType | T.MapType | T.StructType):
        return False
    kind = "string" if isinstance(source, T.StringType) else source.simpleString()  # collated too
    if kind in _TIMES or target in _TIMES:
        return (target if kind in _TIMES else kind) in ("string", *_TIMES)
    if target == "binary":
        return isinstance(source, T.BinaryType | T.StringType)
    return not isinstance(source, T.BinaryType) or target == "string"


def typed_inputs(
    df: DataFrame, inputs: Sequence[InputColumn], extra: Sequence[Column] = ()
) -> DataFrame:
    """The frame as the rules see it: the model's inputs cast to the signature's types (a value
    that does not cast is null), every other column as read, then `extra`."""
    typed = {c.name: c.spark_type for c in inputs if c.name in df.columns}
    return df.select(
        *[
            (
                F.col(C.quoted(c)).try_cast(spark_data_type(typed[c]))
                if c in typed
                else F.col(C.quoted(c))
            ).alias(c)
            for c in df.columns
        ],
        *extra,
    )


def carried_columns(key: str | None, passthrough: Sequence[str]) -> list[str]:
    """Columns copied next to predictions: the key first, then the passthrough, no repeats."""
    ordered = ([key] if key else []) + list(passthrough)
    return list(dict.fromkeys(ordered))


def validate(
    df: DataFrame,
    inputs: Sequence[InputColumn],
    rules: Sequence[Rule],
    redact: Sequence[str] = (),
) -> Validated:
    """Evaluate every check once per row: VALID, and the errors of each kind as arrays.

    Rules see the model's inputs already cast to the signature's types (a value that does not
    cast is null there), so `kwh >= 0` works even when a file stored kwh as text; the frame
    returned keeps every column as read.
    """
    typed = [c.name for c in inputs if c.name in df.columns]
    raw_names = {name: f"{_WORKING_PREFIX}raw_{index}" for index, name in enumerate(typed)}
    typed_view = typed_inputs(
        df, inputs, [F.col(C.quoted(c)).alias(raw) for c, raw in raw_names.items()]
    )
    signature = signature_checks(inputs, df.schema, raw_names, redact)
    reads = {rule.name: columns_read(df.sparkSession, rule.expr) for rule in rules}
    values = [f"{_WORKING_PREFIX}rule_{index}" for index in range(len(rules))]
    typed_view = typed_view.select(
        "*",
        *[F.expr(r.expr).cast("boolean").alias(v) for r, v in zip(rules, values, strict=True)],
    )
    checks = (*signature, *rule_checks(rules, [F.col(v) for v in values], signature, reads))
    as_read = [F.col(raw_names.get(c, C.quoted(c))).alias(c) for c in df.columns]
    return Validated(
        frame=typed_view.select(
            *as_read,
            passes(checks, "quarantine").alias(VALID),
            failures(checks, "quarantine").alias(C.ERRORS),
            failures(checks, "warn").alias(C.WARNINGS),
            failures(checks, "fail").alias(_STOPS),
        ),
        checks=checks,
        input_columns=tuple(user_columns(df)),
    )


def staged(
    validated: Validated,
    inputs: Sequence[InputColumn],
    outputs: Sequence[OutputColumn],
    score: Callable[[Column], Column],
    carried: Sequence[str],
    with_table_version: bool,
    redact: Sequence[str] = (),
) -> DataFrame:
    """Every row once, in one pass: valid rows through the model, and each row with what both
    commits and the run record need, so nothing reads or scores the input again.

    The model sees only its input columns plus VALID (rows that failed validation are not
    predicted). A row to quarantine, by validation or because the model raised on it, keeps its
    input as read (redacted) in FAILED_INPUT and its reasons in ERRORS; a scored row has both null.
    The run's constant lineage is left to the commits (writing it per row measured 7% of the
    staging write).
    """
    columns = set(validated.input_columns)
    present = {f.name: f.dataType for f in validated.frame.schema.fields if f.name in columns}
    model_input = F.struct(*cast_inputs(inputs, present, F.col(VALID)), F.col(VALID))
    raw = validated.frame.select("*", score(model_input).alias(_PREDICTION_STRUCT))
    score_error = F.col(f"{_PREDICTION_STRUCT}.{C.SCORE_ERROR}")
    errors = F.when(~F.col(VALID), F.col(C.ERRORS)).when(
        score_error.isNotNull(),
        F.array(error_struct(C.STAGE_SCORE, C.RULE_MODEL_ERROR, None, score_error)).cast(
            ERRORS_TYPE
        ),
    )
    # A warn rule counts the rows it let through to the predictions; a row quarantined for
    # another reason is not scored, and its warnings are in no table's row.
    warned = F.when(errors.isNull(), F.col(C.WARNINGS)).otherwise(F.array().cast(ERRORS_TYPE))
    flags = F.concat(warned, F.col(_STOPS))
    lineage = [F.col(C.SOURCE_FILE), F.col(C.SOURCE_FILE_MODIFIED_AT)]
    if with_table_version:
        lineage.append(F.col(C.SOURCE_TABLE_VERSION))
    as_read = F.struct(*redact_columns(validated.input_columns, redact))
    return raw.select(
        *[F.col(C.quoted(c)) for c in carried],
        *[F.col(f"{_PREDICTION_STRUCT}.{C.quoted(o.name)}").alias(o.name) for o in outputs],
        *lineage,
        errors.alias(C.ERRORS),
        F.when(F.size(flags) > 0, flags).alias(C.FLAGS),
        score_error.alias(C.SCORE_ERROR),
        F.when(errors.isNotNull(), as_read).alias(C.FAILED_INPUT),
        F.col(f"{_PREDICTION_STRUCT}.{C.EXECUTOR}").alias(C.EXECUTOR),
        F.col(f"{_PREDICTION_STRUCT}.{C.TASK}").alias(C.TASK),
    )


def staged_summary(staged: DataFrame) -> DataFrame:
    """Rows per source file and task: read, scored, and failed by the model. Small (files by tasks)
    and read from the staged rows, so counting never touches the input again."""
    return staged.groupBy(C.SOURCE_FILE, C.EXECUTOR, C.TASK).agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col(C.ERRORS).isNull(), 1)).alias("scored"),
        F.count(F.col(C.SCORE_ERROR)).alias("score_failed"),
    )


def check_failures(staged: DataFrame) -> DataFrame:
    """Rows that broke each validation check (rule, column, rows), of every action."""
    empty = F.array().cast(ERRORS_TYPE)
    flagged = staged.where(F.col(C.ERRORS).isNotNull() | F.col(C.FLAGS).isNotNull()).select(
        F.explode(
            F.concat(F.coalesce(F.col(C.ERRORS), empty), F.coalesce(F.col(C.FLAGS), empty))
        ).alias("e")
    )
    return (
        flagged.where(F.col("e.stage") == C.STAGE_VALIDATE)
        .groupBy(F.col("e.rule").alias("rule"), F.col("e.column").alias("column"))
        .agg(F.count(F.lit(1)).alias("rows"))
    )


def predictions(staged: DataFrame, stamp: RunStamp) -> DataFrame:
    """The rows the model scored, as committed: carried columns, predictions, lineage."""
    source = [c for c in C.SOURCE_LINEAGE if c in staged.columns]
    carried_and_outputs = [
        C.quoted(c) for c in staged.columns if c not in _WORKING_COLUMNS and c not in source
    ]
    return staged.where(F.col(C.ERRORS).isNull()).select(
        *carried_and_outputs,
        F.lit(stamp.run_id).alias(C.RUN_ID),
        F.lit(stamp.model.name).cast("string").alias(C.MODEL_NAME),
        F.lit(stamp.model.version_label).alias(C.MODEL_VERSION),
        F.lit(stamp.model.pinned_uri).alias(C.MODEL_URI),
        F.lit(stamp.at).cast(T.TimestampType()).alias(C.SCORED_AT),
        *source,
    )


def default_stats_columns(outputs: Sequence[OutputColumn]) -> tuple[str, ...]:
    """Columns the predictions table keeps Delta statistics for, unless the deployment says.

    The run id (each rerun's replaceWhere and per-run reads skip other runs' files), the scoring
    time and the predictions. Not the key, file paths or model URI: string statistics cost the
    most to collect (measured: appending 2M predictions took 1.6x as long with statistics on all
    nine columns as with these three), and a random key skips nothing.
    """
    return (C.RUN_ID, C.SCORED_AT, *[o.name for o in outputs])


def quarantine(staged: DataFrame, input_columns: Sequence[str], stamp: RunStamp) -> DataFrame:
    """Rows to quarantine: the input columns as read, the reasons, and lineage."""
    return staged.where(F.col(C.ERRORS).isNotNull()).select(
        *[F.col(f"{C.FAILED_INPUT}.{C.quoted(c)}").alias(c) for c in input_columns],
        F.col(C.ERRORS),
        F.lit(stamp.run_id).alias(C.RUN_ID),
        F.lit(stamp.at).cast(T.TimestampType()).alias(C.QUARANTINED_AT),
        F.col(C.SOURCE_FILE),
        F.lit(stamp.model.version_label).alias(C.MODEL_VERSION),
    )


def _reserved_names() -> set[str]:
    """Names lakescore adds to a row on its way through a run."""
    return {
        VALID,
        _STOPS,
        _PREDICTION_STRUCT,
        *_WORKING_COLUMNS,
        C.RUN_ID,
        C.MODEL_NAME,
        C.MODEL_VERSION,
        C.MODEL_URI,
        C.SCORED_AT,
        C.SOURCE_FILE,
        C.SOURCE_FILE_MODIFIED_AT,
        C.SOURCE_TABLE_VERSION,
        C.ERRORS,
        C.WARNINGS,
        C.QUARANTINED_AT,
    }
