"""DataFrame in, (scored, quarantined) out: the pure core of a run. No reads, no writes.

read → validate → score → split. The caller (runner.py) decides when each frame is written, so
each valid row flows through the model exactly once, in the predictions write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakescore import columns as C
from lakescore.config import Rule
from lakescore.errors import DeploymentError, InputError
from lakescore.model import InputColumn, OutputColumn, ResolvedModel
from lakescore.validate import (
    ERRORS_TYPE,
    Check,
    cast_inputs,
    collect_errors,
    error_struct,
    missing_inputs,
    rule_checks,
    signature_checks,
    with_check_columns,
)

_PREDICTION_STRUCT = "__prediction"
_AS_READ = "__as_read"


@dataclass(frozen=True)
class RunStamp:
    """Values fixed on the driver for the whole run: executors compute nothing nondeterministic."""

    run_id: str
    at: datetime
    model: ResolvedModel


@dataclass(frozen=True)
class Validated:
    """The input with one column per check, plus `_errors` and `_warnings`."""

    frame: DataFrame
    checks: tuple[Check, ...]
    check_columns: tuple[str, ...]
    input_columns: tuple[str, ...]


def user_columns(df: DataFrame) -> list[str]:
    """The input's own columns, without the lineage columns added when it was read."""
    return [c for c in df.columns if c not in C.SOURCE_LINEAGE]


def model_inputs(model: ResolvedModel, df: DataFrame, key: str | None) -> tuple[InputColumn, ...]:
    """The model's inputs; without a signature, every user column except the key, as read."""
    if model.inputs is not None:
        return model.inputs
    types = dict(df.dtypes)
    return tuple(
        InputColumn(name, types[name], required=False) for name in user_columns(df) if name != key
    )


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
    carried = carried_columns(key, passthrough)
    absent = [c for c in carried if c not in columns]
    if absent:
        raise InputError(
            f"input.key/passthrough name column(s) {', '.join(absent)} that the input lacks."
        )
    reserved = [c for c in columns if c.startswith("_") and c in _lineage_names()]
    if reserved:
        raise DeploymentError(f"Input column(s) {', '.join(reserved)} clash with lineage columns.")
    clash = sorted(set(carried) & {o.name for o in outputs})
    if clash:
        raise DeploymentError(
            f"Passthrough column(s) {', '.join(clash)} have the same name as the model's "
            "prediction column(s)."
        )


def carried_columns(key: str | None, passthrough: Sequence[str]) -> list[str]:
    """Columns copied next to predictions: the key first, then the passthrough, no repeats."""
    ordered = ([key] if key else []) + list(passthrough)
    return list(dict.fromkeys(ordered))


def validate(df: DataFrame, inputs: Sequence[InputColumn], rules: Sequence[Rule]) -> Validated:
    """Evaluate every check once per row; the frame keeps each check's result as a column.

    Rules see the model's inputs already cast to the signature's types (a value that does not
    cast is null there), so `kwh >= 0` works even when a file stored kwh as text; the frame
    returned keeps every column as read.
    """
    typed = {c.name: c.spark_type for c in inputs if c.name in df.columns}
    raw_names = {name: f"__raw_{index}" for index, name in enumerate(typed)}
    typed_view = df.select(
        *[
            (F.col(_q(c)).try_cast(typed[c]) if c in typed else F.col(_q(c))).alias(c)
            for c in df.columns
        ],
        *[F.col(_q(c)).alias(raw) for c, raw in raw_names.items()],
    )
    checks = (*signature_checks(inputs, df.schema, raw_names), *rule_checks(rules))
    checked, names = with_check_columns(typed_view, checks)
    errors, warnings = collect_errors(checks, names)
    as_read = [F.col(raw_names.get(c, _q(c))).alias(c) for c in df.columns]
    return Validated(
        frame=checked.select(*as_read, *names, errors, warnings),
        checks=checks,
        check_columns=tuple(names),
        input_columns=tuple(user_columns(df)),
    )


def validation_summary(validated: Validated) -> list[Column]:
    """Aggregates for one pass over the input: rows, rows to quarantine, failures per check."""
    return [
        F.count(F.lit(1)).alias("rows_read"),
        F.count(F.when(F.size(C.ERRORS) > 0, 1)).alias("rows_invalid"),
        *[F.count(F.col(name)).alias(name) for name in validated.check_columns],
    ]


def valid_rows(validated: Validated) -> DataFrame:
    return validated.frame.where(F.size(C.ERRORS) == 0)


def invalid_rows(validated: Validated) -> DataFrame:
    return validated.frame.where(F.size(C.ERRORS) > 0)


def scored(
    validated: Validated,
    inputs: Sequence[InputColumn],
    outputs: Sequence[OutputColumn],
    score: Callable[[Column], Column],
    carried: Sequence[str],
    stamp: RunStamp,
    with_table_version: bool,
) -> DataFrame:
    """Valid rows through the model once: what the predictions table needs, plus each row's score
    error and, for rows the model failed on only, the input as read (to quarantine them later
    without reading or scoring anything again)."""
    model_input = F.struct(*cast_inputs(inputs))
    as_read = F.struct(*[F.col(_q(c)) for c in validated.input_columns])
    raw = valid_rows(validated).select(
        *[F.col(_q(c)) for c in carried],
        score(model_input).alias(_PREDICTION_STRUCT),
        as_read.alias(_AS_READ),
        F.col(C.SOURCE_FILE),
        F.col(C.SOURCE_FILE_MODIFIED_AT),
        F.col(C.SOURCE_TABLE_VERSION),
    )
    error = F.col(f"{_PREDICTION_STRUCT}.{C.SCORE_ERROR}")
    lineage = [
        F.lit(stamp.run_id).alias(C.RUN_ID),
        F.lit(stamp.model.name).cast("string").alias(C.MODEL_NAME),
        F.lit(stamp.model.version_label).alias(C.MODEL_VERSION),
        F.lit(stamp.model.pinned_uri).alias(C.MODEL_URI),
        F.lit(stamp.at).cast("timestamp").alias(C.SCORED_AT),
        F.col(C.SOURCE_FILE),
        F.col(C.SOURCE_FILE_MODIFIED_AT),
    ]
    if with_table_version:
        lineage.append(F.col(C.SOURCE_TABLE_VERSION))
    return raw.select(
        *[F.col(_q(c)) for c in carried],
        *[F.col(f"{_PREDICTION_STRUCT}.{_q(o.name)}").alias(o.name) for o in outputs],
        *lineage,
        error.alias(C.SCORE_ERROR),
        F.when(error.isNotNull(), F.col(_AS_READ)).alias(C.FAILED_INPUT),
        F.col(f"{_PREDICTION_STRUCT}.{C.EXECUTOR}").alias(C.EXECUTOR),
        F.col(f"{_PREDICTION_STRUCT}.{C.TASK}").alias(C.TASK),
    )


def executor_summary(staged: DataFrame) -> list[Column]:
    """Per executor: the tasks that scored, the rows they scored and the rows the model failed."""
    return [
        F.countDistinct(C.TASK).alias("tasks"),
        F.count(F.when(F.col(C.SCORE_ERROR).isNull(), 1)).alias("rows"),
        F.count(F.col(C.SCORE_ERROR)).alias("rows_failed"),
    ]


def predictions(staged: DataFrame) -> DataFrame:
    """The rows the model scored, as committed: carried columns, predictions, lineage."""
    return staged.where(F.col(C.SCORE_ERROR).isNull()).drop(
        C.SCORE_ERROR, C.FAILED_INPUT, C.EXECUTOR, C.TASK
    )


def score_failures(staged: DataFrame, validated: Validated, stamp: RunStamp) -> DataFrame:
    """Rows the model raised on, shaped like the quarantine table, with the model's message."""
    return staged.where(F.col(C.SCORE_ERROR).isNotNull()).select(
        *[F.col(f"{C.FAILED_INPUT}.{_q(c)}").alias(c) for c in validated.input_columns],
        F.array(error_struct(C.STAGE_SCORE, C.RULE_MODEL_ERROR, None, F.col(C.SCORE_ERROR)))
        .cast(ERRORS_TYPE)
        .alias(C.ERRORS),
        F.lit(stamp.run_id).alias(C.RUN_ID),
        F.lit(stamp.at).cast("timestamp").alias(C.QUARANTINED_AT),
        F.col(C.SOURCE_FILE),
        F.lit(stamp.model.version_label).alias(C.MODEL_VERSION),
    )


def quarantine(validated: Validated, stamp: RunStamp) -> DataFrame:
    """Rows that failed a check: the input columns as read, the reasons, and lineage."""
    return invalid_rows(validated).select(
        *[F.col(_q(c)) for c in validated.input_columns],
        F.col(C.ERRORS),
        F.lit(stamp.run_id).alias(C.RUN_ID),
        F.lit(stamp.at).cast("timestamp").alias(C.QUARANTINED_AT),
        F.col(C.SOURCE_FILE),
        F.lit(stamp.model.version_label).alias(C.MODEL_VERSION),
    )


def _lineage_names() -> set[str]:
    return {
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


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
