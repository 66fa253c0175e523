"""Scoring: a pandas-only `predict_batch` and the iterator pandas UDF calling it per Arrow batch."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column
from pyspark.sql import types as T
from pyspark.sql.pandas.functions import pandas_udf

from lakescore.columns import EXECUTOR, SCORE_ERROR, TASK
from lakescore.errors import ScoringError
from lakescore.model import InputColumn, OutputColumn, spark_data_type

_PANDAS_TYPES = {
    "boolean": "bool",
    "int": "int32",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
}


def predict_batch(
    model: Any,
    batch: pd.DataFrame,
    outputs: Sequence[OutputColumn],
    model_label: str,
    withhold_messages: bool = False,
) -> pd.DataFrame:
    """Score one batch and shape the result as one column per output, in the signature's order,
    plus SCORE_ERROR: the rows on which the model left a required output null or NaN get their
    error there (they go to quarantine, and count against `limits`), instead of being stored
    as scored. A model version that returns NaN for every row would otherwise commit millions
    of empty predictions as a success.

    Pure pandas, so it is testable without Spark. Raises ScoringError naming the model when the
    result has the wrong number of rows or a shape lakescore cannot store. The model sees the
    rows indexed 0..n-1, as pyfunc's own predict and spark_udf give them: a model that lines its
    features up by index (`features["x"] = model_input["x"]`) would otherwise take other rows'
    values whenever the batch is a subset (valid rows only, or half of a failing batch).
    `withhold_messages`: see `predict_isolating_failures` (a value that is not of its output's
    type may be an input's, echoed).
    """
    raw = model.predict(batch.reset_index(drop=True))
    if raw is None:  # a `return` left out
        raise ScoringError(f"Model {model_label} returned None for {len(batch)} rows.")
    result = _as_frame(raw, outputs, model_label, len(batch), withhold_messages)
    if len(result) != len(batch):
        raise ScoringError(
            f"Model {model_label} returned {len(result)} predictions for {len(batch)} rows."
        )
    result.index = batch.index
    absent = result[[c.name for c in outputs]].isna()  # once: it decides both below
    errors = _missing_required(absent, outputs)
    ok = errors.isna()
    for column in outputs:
        values = result[column.name]
        present = ok & ~absent[column.name]  # an optional output may be null on a scored row
        try:
            coerced = _coerce(values if present.all() else values[present], column.spark_type)
        except (TypeError, ValueError, OverflowError) as exc:
            detail = (
                f"{type(exc).__name__} (message withheld: the model's input includes a "
                "quarantine.redact column)"
                if withhold_messages
                else str(exc).rstrip(".")
            )
            raise ScoringError(
                f"Model {model_label} returned values for {column.name} that are not "
                f"{column.spark_type}: {detail}. The type comes from the model's "
                "output signature, or from scoring.result_type when the signature has no outputs."
            ) from None if withhold_messages else exc
        if not present.all():  # through object: reindexing would turn integers into float64
            reindexed = coerced.astype(object).reindex(result.index)
            coerced = _restore_type(reindexed, present, column.spark_type)
        result[column.name] = coerced
    result[SCORE_ERROR] = errors
    return result


def _missing_required(absent: pd.DataFrame, outputs: Sequence[OutputColumn]) -> pd.Series:
    """Per row, None, or the error of a row where a required output is null or NaN (`absent`:
    the outputs' isna())."""
    errors = pd.Series([None] * len(absent), index=absent.index, dtype=object)
    required = [c.name for c in outputs if c.required]
    if not required:
        return errors
    rows = absent[required].any(axis=1)
    if rows.any():
        errors[rows] = [
            "the model returned no value (null or NaN) for required output(s) "
            + ", ".join(name for name, missing in zip(required, flags, strict=True) if missing)
            for flags in absent.loc[rows, required].itertuples(index=False)
        ]
    return errors


def predict_isolating_failures(
    model: Any,
    batch: pd.DataFrame,
    outputs: Sequence[OutputColumn],
    model_label: str,
    max_isolated: int = 32,
    input_dtypes: Mapping[str, str] | None = None,
    withhold_messages: bool = False,
) -> pd.DataFrame:
    """Score a batch; when the model raises, split the batch in halves to find the rows at fault.

    Returns the output columns plus SCORE_ERROR (null for rows that scored). The bisection costs
    about 2·log2(n) extra calls per bad row; after `max_isolated` bad rows in one batch the rest
    of any still-failing part is marked failed as a whole, so a model that fails on everything
    ends in quarantine (and trips the limits) instead of being called once per row.
    A ScoringError (wrong row count or type) is not the data's fault: it fails the run.
    `input_dtypes` (see `restore_input_dtypes`) is applied to every part the model sees; rows
    with a null in such an input are scored apart first, each part with its own `max_isolated`
    budget. With
    `withhold_messages`, a row's error keeps only the exception's type: the model's inputs include
    a redacted column, and exception messages often quote the input.
    """
    dtypes = input_dtypes or {}
    holes = _null_in_typed_input(batch, dtypes)
    if holes.any() and not holes.all():
        # A null in an integer or boolean input leaves its column float or object, which pyfunc
        # refuses for that input. Scored apart, those rows cannot fail the others: bisection
        # would find the good rows only up to `max_isolated` failures, and quarantine the rest.
        options: dict[str, Any] = {
            "max_isolated": max_isolated,
            "input_dtypes": dtypes,
            "withhold_messages": withhold_messages,
        }
        parts = [
            predict_isolating_failures(model, batch[rows], outputs, model_label, **options)
            for rows in (~holes, holes)
        ]
        return _reassembled(parts, batch.index, outputs)
    try:  # the usual case: one call
        whole = predict_batch(
            model, restore_input_dtypes(batch, dtypes), outputs, model_label, withhold_messages
        )
    except ScoringError:
        raise
    except Exception:  # any model error: find the rows at fault below
        pass
    else:
        return whole
    names = [c.name for c in outputs]
    result = pd.DataFrame(index=batch.index, columns=names, dtype=object)
    errors = pd.Series(None, index=batch.index, dtype=object)
    middle = len(batch) // 2
    pending = [batch.iloc[middle:], batch.iloc[:middle]] if len(batch) > 1 else [batch]
    isolated = 0
    while pending:
        part = pending.pop()
        try:
            scored = predict_batch(
                model, restore_input_dtypes(part, dtypes), outputs, model_label, withhold_messages
            )
        except ScoringError:
            raise
        except Exception as exc:
            message = (
                f"{type(exc).__name__} (message withheld: the model's input includes a "
                "quarantine.redact column)"
                if withhold_messages
                else f"{type(exc).__name__}: {exc}"[:1000]
            )
            if len(part) <= 1:  # an empty part (an empty batch) is not split forever
                errors.loc[part.index] = message
                isolated += len(part)
            elif isolated >= max_isolated:
                errors.loc[part.index] = f"{message} (batch not split further: too many failures)"
            else:
                middle = len(part) // 2
                pending.extend([part.iloc[middle:], part.iloc[:middle]])
            continue
        result.loc[part.index, names] = scored[names]
        errors.loc[part.index] = scored[SCORE_ERROR]
    for column in outputs:
        ok = errors.isna()
        result[column.name] = _restore_type(result[column.name], ok, column.spark_type)
    result[SCORE_ERROR] = errors
    return result


def _null_in_typed_input(batch: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.Series:
    """Per row, whether it holds a null in an input whose dtype `restore_input_dtypes` gives."""
    typed = [name for name in dtypes if name in batch.columns]
    if not typed:
        return pd.Series(False, index=batch.index)
    return batch[typed].isna().any(axis=1)


def _reassembled(
    parts: Sequence[pd.DataFrame], index: pd.Index, outputs: Sequence[OutputColumn]
) -> pd.DataFrame:
    """Results of parts of a batch, in the batch's order (rows in no part get null outputs and no
    error), each output column of its own dtype."""
    # Integers go through object: reindexing adds nulls, which would turn them into float64 and
    # round values above 2**53.
    integral = {c.name: object for c in outputs if _is_integral(c.spark_type)}
    combined = pd.concat([part.astype(integral) for part in parts])
    result = combined.reindex(index)
    given = pd.Series(index.isin(combined.index), index=index)
    ok = given & result[SCORE_ERROR].isna()
    for column in outputs:
        result[column.name] = _restore_type(result[column.name], ok, column.spark_type)
    result[SCORE_ERROR] = result[SCORE_ERROR].astype(object).where(given & ~ok, None)
    return result


def predict_valid_rows(
    model: Any,
    batch: pd.DataFrame,
    valid: pd.Series,
    outputs: Sequence[OutputColumn],
    model_label: str,
    input_dtypes: Mapping[str, str] | None = None,
    withhold_messages: bool = False,
) -> pd.DataFrame:
    """Score only the rows marked valid; the others get null outputs and no error (validation
    already quarantined them, and the model never sees values it cannot take)."""
    options: dict[str, Any] = {
        "input_dtypes": input_dtypes,
        "withhold_messages": withhold_messages,
    }
    if valid.all():
        return predict_isolating_failures(model, batch, outputs, model_label, **options)
    names = [c.name for c in outputs]
    if not valid.any():
        empty = pd.DataFrame(None, index=batch.index, columns=names, dtype=object)
        return empty.assign(**{SCORE_ERROR: None})
    scored = predict_isolating_failures(model, batch[valid], outputs, model_label, **options)
    return _reassembled([scored], batch.index, outputs)


def input_dtypes(inputs: Sequence[InputColumn]) -> dict[str, str]:
    """The pandas dtype of each integer or boolean model input, for `restore_input_dtypes`."""
    return {
        c.name: _PANDAS_TYPES[c.spark_type]
        for c in inputs
        if c.spark_type in ("int", "bigint", "boolean")
    }


def restore_input_dtypes(batch: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Give integer and boolean inputs their own dtype back in the rows the model will see.

    Arrow hands pandas a float64 column for integers, and an object column for booleans, as soon
    as one row of the batch is null there, and pyfunc refuses float64 for an integer input. So
    one null row (quarantined by validation) would fail every other row of its batch. A column
    whose rows still hold nulls (an optional input) is left as it is.
    """
    restored = {
        name: batch[name].astype(dtype)
        for name, dtype in dtypes.items()
        if name in batch.columns and batch[name].dtype != dtype and not batch[name].isna().any()
    }
    return batch.assign(**restored) if restored else batch


def output_struct(outputs: Sequence[OutputColumn]) -> T.StructType:
    """The UDF's return type: one field per prediction column, then the row's score error."""
    return T.StructType(
        [T.StructField(c.name, spark_data_type(c.spark_type)) for c in outputs]
        + [
            T.StructField(SCORE_ERROR, T.StringType()),
            T.StructField(EXECUTOR, T.StringType()),
            T.StructField(TASK, T.LongType()),
        ]
    )


def scoring_udf(
    archive_name: str,
    inputs: Sequence[InputColumn],
    outputs: Sequence[OutputColumn],
    model_label: str,
    valid_column: str,
    withhold_messages: bool = False,
) -> Callable[[Column], Column]:
    """An iterator pandas UDF: loads the model once per worker, then scores batch after batch.

    Its argument is a struct of the model's inputs plus the `valid_column` flag, which selects
    the rows the model sees. `withhold_messages`: see `predict_isolating_failures`.
    """
    return_type = output_struct(outputs)
    outputs = tuple(outputs)
    dtypes = input_dtypes(inputs)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lakescore import model_cache
        from lakescore.faults import fault_point

        executor, task = executor_label(), _task_attempt()
        try:
            model = model_cache.get_or_load(archive_name)
        except Exception as exc:  # a package missing on the executors, a pickle of another age
            raise ScoringError(
                f"Model {model_label} could not be loaded on executor {executor}: "
                f"{type(exc).__name__}: {str(exc)[:500]}"
            ) from exc
        for batch in batches:
            valid = batch.pop(valid_column).fillna(False).astype(bool)
            scored = predict_valid_rows(
                model,
                batch,
                valid,
                outputs,
                model_label,
                input_dtypes=dtypes,
                withhold_messages=withhold_messages,
            )
            yield scored.assign(**{EXECUTOR: executor, TASK: task})
            fault_point("scoring")

    return pandas_udf(score, return_type)  # type: ignore[call-overload,no-any-return]


def executor_label() -> str:
    """`host/executor-id` of the executor running this Python worker, or `host/driver` locally.

    Python's TaskContext has no executor id, but Python workers inherit their executor's
    environment and working directory: Kubernetes sets SPARK_EXECUTOR_ID in an executor's pod,
    YARN sets CONTAINER_ID in its container, and a standalone executor runs in
    `<work>/<app-id>/<id>`.
    """
    executor = os.environ.get("SPARK_EXECUTOR_ID") or os.environ.get("CONTAINER_ID")
    if not executor:
        parent, leaf = os.path.split(os.getcwd())
        executor = leaf if os.path.basename(parent).startswith("app-") else "driver"
    return f"{socket.gethostname()}/{executor}"


def _task_attempt() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return int(context.taskAttemptId()) if context is not None else -1


def _as_frame(
    raw: Any,
    outputs: Sequence[OutputColumn],
    model_label: str,
    rows: int,
    withhold_messages: bool = False,
) -> pd.DataFrame:
    names = [c.name for c in outputs]
    if not isinstance(raw, pd.Series | pd.DataFrame) and callable(getattr(raw, "to_pandas", None)):
        # A pyarrow Table or a polars DataFrame: as pandas, its columns are matched by name, not
        # taken in the order they come in. Integers stay exact beside a null (as float64 they
        # would be rounded above 2**53); polars passes the option on to pyarrow.
        library = type(raw).__module__.partition(".")[0]
        exact = {"integer_object_nulls": True} if library in ("pyarrow", "polars") else {}
        raw = raw.to_pandas(**exact)
    if isinstance(raw, pd.Series | pd.DataFrame):
        raw = _in_input_order(raw)
    if rows == 1 and len(names) > 1:
        raw = _one_row_squeezed(raw, names)
    if isinstance(raw, pd.DataFrame):
        unnamed = all(not isinstance(c, str) for c in raw.columns)
        if set(names) <= set(map(str, raw.columns)):
            frame = raw.rename(columns=str)[names]
        elif (unnamed or len(names) == 1) and raw.shape[1] == len(names):
            # One column for one output is taken whatever its name, as spark_udf does.
            frame = raw.set_axis(names, axis=1)
        else:
            raise ScoringError(
                f"Model {model_label} returned columns {list(raw.columns)}; {_promised(outputs)}"
            )
        return frame.reset_index(drop=True)
    if isinstance(raw, pd.Series):
        raw = raw.to_numpy()
    if isinstance(raw, Mapping):
        keys = "" if withhold_messages else f" with keys {list(raw)[:10]}"  # inputs, perhaps
        raise ScoringError(
            f"Model {model_label} returned a {type(raw).__name__}{keys}; lakescore needs one "
            "value, one row of a DataFrame or one row of an array per input row."
        )
    array = np.asarray(raw)
    if array.ndim == 0 and rows == 1:  # `predictions.squeeze()` of one row (a failing row alone)
        array = array.reshape(1)
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        if len(names) != 1:
            raise ScoringError(
                f"Model {model_label} returned one value per row; {_promised(outputs)}"
            )
        return pd.DataFrame({names[0]: array.reshape(-1)})
    if array.ndim == 2 and array.shape[1] == len(names):
        return pd.DataFrame(array, columns=names)
    raise ScoringError(
        f"Model {model_label} returned an array of shape {array.shape}; {_promised(outputs)}"
    )


def _promised(outputs: Sequence[OutputColumn]) -> str:
    """What the result should have been, and where that comes from: the output signature, or,
    for a model without one, `scoring.result_type`, which cannot describe several columns."""
    if all(column.signed for column in outputs):
        return f"its signature promises the columns {[c.name for c in outputs]}."
    return (
        f"without an output signature lakescore stores one column, {outputs[0].name!r}, of "
        f"scoring.result_type ({outputs[0].spark_type}). To store several outputs, log the "
        "model with one: mlflow.models.infer_signature(X, model.predict(X))."
    )


def _one_row_squeezed(raw: Any, names: Sequence[str]) -> Any:
    """One row's outputs as `squeeze()` leaves them (a Series labelled by the outputs' names, or
    an array of one value per output) as a one-row frame; anything else as it is."""
    if isinstance(raw, pd.Series) and set(names) <= set(map(str, raw.index)):
        return raw.rename(index=str)[list(names)].to_frame().T
    if isinstance(raw, np.ndarray) and raw.shape == (len(names),):
        return pd.DataFrame([raw], columns=list(names))
    return raw


def _in_input_order(raw: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """A result labelled with the batch's own row labels (0..n-1, as the model got them) in
    another order, from a model that grouped or sorted its input (`pd.concat(f(g) for _, g in
    batch.groupby("tariff"))`, or `groupby(...).apply(f)`, labelled (group, row)), is put back
    in the input's order, as pandas would line the first up
    (`batch.assign(p=model.predict(batch))`); read by position, as spark_udf reads it, each
    value would be stored against another row. Other labels are read by position."""
    index = raw.index
    if isinstance(index, pd.MultiIndex):
        # `batch.groupby("tariff")["x"].apply(f)` labels each row (group, row): read by
        # position, every row but the first group's got another row's value. Not (row, rank),
        # whose row is its first level, in order.
        levels = [index.get_level_values(n) for n in range(index.nlevels)]
        if any(_is_batch_order(level) for level in levels[:-1]):
            return raw
        if _is_batch_order(levels[-1]) and not levels[-1].is_monotonic_increasing:
            return raw.set_axis(levels[-1]).sort_index()
        return raw
    if index.is_monotonic_increasing or not _is_batch_order(index):
        return raw
    return raw.sort_index()


def _is_batch_order(index: pd.Index) -> bool:
    """Whether `index` holds each of the batch's labels 0..n-1 once."""
    return (
        index.dtype.kind in "iu"
        and index.is_unique
        and (not len(index) or (index.min() == 0 and index.max() == len(index) - 1))
    )


def _restore_type(values: pd.Series, ok: pd.Series, spark_type: str) -> pd.Series:
    """Give a column assembled from parts its dtype back; failed rows stay null."""
    if spark_type == "timestamp":
        return _restore_timestamps(values, ok)
    target = _PANDAS_TYPES.get(spark_type)
    # A null on a scored row (an optional output) keeps the column as objects: astype would
    # raise for an integer and make False of it for a boolean.
    if ok.all() and values.notna().all() and target not in (None, "object"):
        return values.astype(target)
    if target in ("float32", "float64"):
        return values.astype(target)
    return values.astype(object).where(ok, None)


def _restore_timestamps(values: pd.Series, ok: pd.Series) -> pd.Series:
    """Timestamps that came as datetime64 stay datetime64 (NaT for failed rows), as in a batch
    without failed rows: PySpark moves only datetime64 columns from the session's time zone, so
    the same values as objects would be stored shifted by the session's offset. Values the model
    gave as Python datetimes (which may lie beyond pandas' years 1677-2262) stay objects.
    """
    if values.dtype.kind == "M":
        return values.where(ok)
    kept = values.astype(object).where(ok, None)
    given = kept.dropna()
    if len(given) and all(isinstance(v, pd.Timestamp) for v in given):
        try:  # the parts of a split batch, reassembled as objects
            return pd.to_datetime(kept)
        except (ValueError, TypeError):  # out of range, or halves in different time zones
            pass
    return kept


def _is_integral(spark_type: str) -> bool:
    return _PANDAS_TYPES.get(spark_type, "").startswith("int")


def _coerce(values: pd.Series, spark_type: str) -> pd.Series:
    """`values` (none of them null) as `spark_type`'s pandas type; ValueError or TypeError for
    values that type would change rather than hold."""
    if spark_type == "timestamp":
        return _times(values)
    if spark_type == "binary":
        if not values.map(lambda v: isinstance(v, bytes | bytearray)).all():
            raise ValueError("values other than bytes in a binary column")
        return values
    target = _PANDAS_TYPES.get(spark_type)
    if target is None:
        return values
    if target == "object":
        # Only a column of objects other than text (checked fast) can hold values whose str()
        # would be stored: "b'x'", "{'label': 'POS'}".
        if _holds_containers(values):
            raise ValueError("bytes, lists, sets or mappings in a string column")
        return values.map(lambda v: None if pd.isna(v) else str(v))
    if target.startswith("int"):
        return _integers(values, target, spark_type)
    if target == "bool" and values.dtype.kind != "b" and not values.map(_is_boolean).all():
        # astype(bool) would make any non-empty string True, "False" included.
        raise ValueError("values other than true and false in a boolean column")
    with np.errstate(over="ignore"):  # an overflow is refused below, by name
        coerced = values.astype(target)
    if target.startswith("float") and _rounded_integers(values, target):
        raise ValueError(f"integers too large for {spark_type} to hold exactly")
    if target == "float32" and values.dtype != np.float32:
        # numpy turns a double beyond float's range (1e300) into infinity without a word.
        overflowed = np.isinf(coerced.to_numpy()) & np.isfinite(values.to_numpy(dtype="float64"))
        if overflowed.any():
            raise ValueError(f"values outside the range of {spark_type}")
    return coerced


_CONTAINERS = (bytes, bytearray, Mapping, list, tuple, set, frozenset, np.ndarray)


def _rounded_integers(values: pd.Series, target: str) -> bool:
    """Whether `values`, if integers (numpy's, pandas' nullable or Arrow-backed ones, or Python
    ints), hold one that the floating `target` would round: a float holds every integer only up
    to 2**24, a double up to 2**53. Checked in Python's exact integers, so a value past int64
    (2**63 - 1 rounds to 2**63) is caught whatever the CPU makes of casting it back."""
    integers = pd.api.types.is_integer_dtype(values.dtype) or (
        values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "integer"
    )
    if not integers:
        return False
    limit, rounded = (2**24, np.float32) if target == "float32" else (2**53, float)
    numbers = values.to_numpy() if values.dtype.kind in "iu" else values.to_numpy(dtype=object)
    beyond = numbers[(numbers > limit) | (numbers < -limit)]
    with np.errstate(over="ignore"):  # a float32 past its range is infinite: rounded below
        return any(_rounded(v, rounded) for v in beyond)


def _rounded(value: Any, floating: Callable[[Any], Any]) -> bool:
    """Whether the integer `value` is not exactly itself as `floating` (or beyond its range)."""
    try:
        return int(floating(value)) != int(value)
    except OverflowError:  # infinite as a float32, or past any double
        return True


def _holds_containers(values: pd.Series) -> bool:
    """Whether a column holds bytes or containers; a column of text or numbers, fast."""
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) == "string":
        return False
    return bool(values.map(lambda v: isinstance(v, _CONTAINERS)).any())


def _integers(values: pd.Series, target: str, spark_type: str) -> pd.Series:
    """Whole numbers of any dtype as the integer `target`, exactly; a fraction, a value beyond
    its range or anything but a number refused."""
    if values.dtype.kind == "b":
        return values.astype(target)
    if values.dtype.kind not in "iuf":
        # Objects (a list holding None, Decimals, text) and categoricals, one by one: astype
        # would cut fractions off, and a float (pd.to_numeric) round the digits past 2**53.
        values = values.astype(object).map(_whole)
    elif values.dtype.kind == "f":
        if not np.isfinite(values.to_numpy()).all():
            raise ValueError(f"values outside the range of {spark_type}")
        if (values % 1 != 0).any():
            raise ValueError("fractional values in an integer column")
    bounds = np.iinfo(target)
    # Compared as exact integers: as floats, 2**63 equals the bound it exceeds.
    if len(values) and (int(values.min()) < bounds.min or int(values.max()) > bounds.max):
        raise ValueError(f"values outside the range of {spark_type}")
    return values.astype(target)


def _whole(value: Any) -> int:
    """One value of an object column as the integer it is."""
    try:
        number = Decimal(value) if isinstance(value, str) else value
        whole = int(number)
    except OverflowError as exc:  # infinity
        raise ValueError("values outside the range of an integer") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError("values that are not numbers in an integer column") from exc
    if whole != number:
        raise ValueError("fractional values in an integer column")
    return whole


def _times(values: pd.Series) -> pd.Series:
    """Times as they are; anything else refused: Arrow would store an integer as microseconds
    since 1970 (1700000000 as 00:28:20 on 1 January 1970)."""
    if values.dtype.kind == "M":
        return values
    if not values.map(lambda v: isinstance(v, datetime | np.datetime64)).all():
        raise ValueError("values other than times in a timestamp column")
    return values


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool | np.bool_) or (
        isinstance(value, int | np.integer) and value in (0, 1)
    )
