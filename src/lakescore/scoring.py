"""Scoring: a pandas-only `predict_batch` and the iterator pandas UDF calling it per Arrow batch."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.functions import pandas_udf

from lakescore.errors import ScoringError
from lakescore.model import OutputColumn

_PANDAS_TYPES = {
    "boolean": "bool",
    "int": "int32",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
}


def predict_batch(
    model: Any, batch: pd.DataFrame, outputs: Sequence[OutputColumn], model_label: str
) -> pd.DataFrame:
    """Score one batch and shape the result as one column per output, in the signature's order.

    Pure pandas, so it is testable without Spark. Raises ScoringError naming the model when the
    result has the wrong number of rows or a shape lakescore cannot store.
    """
    raw = model.predict(batch)
    result = _as_frame(raw, outputs, model_label)
    if len(result) != len(batch):
        raise ScoringError(
            f"Model {model_label} returned {len(result)} predictions for {len(batch)} rows."
        )
    result.index = batch.index
    for column in outputs:
        try:
            result[column.name] = _coerce(result[column.name], column.spark_type)
        except (TypeError, ValueError) as exc:
            raise ScoringError(
                f"Model {model_label} returned values for {column.name} that are not "
                f"{column.spark_type}: {exc}"
            ) from exc
    return result


def output_struct(outputs: Sequence[OutputColumn]) -> T.StructType:
    """The UDF's return type: one field per prediction column."""
    return T.StructType(
        [T.StructField(c.name, T._parse_datatype_string(c.spark_type)) for c in outputs]
    )


def ship_model(spark: SparkSession, local_path: str) -> str:
    """Zip the driver's copy of the model and hand it to every executor through Spark.

    Executors read it with SparkFiles, so they never contact the MLflow server. Returns the
    archive's file name, unique per call (Spark refuses two files of one name in a context).
    """
    folder = tempfile.mkdtemp(prefix="lakescore-ship-")
    name = f"lakescore-model-{uuid.uuid4().hex[:12]}"
    archive = shutil.make_archive(os.path.join(folder, name), "zip", root_dir=local_path)
    spark.sparkContext.addFile(archive)
    return os.path.basename(archive)


def scoring_udf(
    archive_name: str, outputs: Sequence[OutputColumn], model_label: str
) -> Callable[[Column], Column]:
    """An iterator pandas UDF: loads the model once per worker, then scores batch after batch."""
    return_type = output_struct(outputs)
    outputs = tuple(outputs)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lakescore import model_cache

        model = model_cache.get_or_load(archive_name)
        for batch in batches:
            yield predict_batch(model, batch, outputs, model_label)

    return pandas_udf(score, return_type)  # type: ignore[call-overload,no-any-return]


def _as_frame(raw: Any, outputs: Sequence[OutputColumn], model_label: str) -> pd.DataFrame:
    names = [c.name for c in outputs]
    if isinstance(raw, pd.DataFrame):
        unnamed = all(not isinstance(c, str) for c in raw.columns)
        if set(names) <= set(map(str, raw.columns)):
            frame = raw.rename(columns=str)[names]
        elif unnamed and raw.shape[1] == len(names):
            frame = raw.set_axis(names, axis=1)
        else:
            raise ScoringError(
                f"Model {model_label} returned columns {list(raw.columns)}; its signature "
                f"promises {names}."
            )
        return frame.reset_index(drop=True)
    if isinstance(raw, pd.Series):
        raw = raw.to_numpy()
    array = np.asarray(raw)
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        if len(names) != 1:
            raise ScoringError(
                f"Model {model_label} returned one value per row; its signature promises {names}."
            )
        return pd.DataFrame({names[0]: array.reshape(-1)})
    if array.ndim == 2 and array.shape[1] == len(names):
        return pd.DataFrame(array, columns=names)
    raise ScoringError(
        f"Model {model_label} returned an array of shape {array.shape}; its signature "
        f"promises the columns {names}."
    )


def _coerce(values: pd.Series, spark_type: str) -> pd.Series:
    target = _PANDAS_TYPES.get(spark_type)
    if target is None:
        return values
    if target == "object":
        return values.map(lambda v: None if pd.isna(v) else str(v))
    if target == "bool" or target.startswith("int"):
        if values.isna().any():
            raise ValueError(f"missing values in a {spark_type} column")
        if target.startswith("int") and values.dtype.kind == "f" and (values % 1 != 0).any():
            raise ValueError("fractional values in an integer column")
    return values.astype(target)
