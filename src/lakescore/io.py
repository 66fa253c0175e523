"""Storage: reading inputs with file lineage, creating Delta tables, and run-scoped Delta writes.

Only this module (and runs.py through it) touches storage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import columns as C
from lakescore.config import InputConfig
from lakescore.errors import InputError


@dataclass(frozen=True)
class InputData:
    """The input as read: rows with lineage columns, the files behind them, the table version."""

    frame: DataFrame
    files: tuple[str, ...]
    table_version: int | None


@dataclass(frozen=True)
class Commit:
    """What one Delta write committed."""

    version: int
    rows: int


def read_input(spark: SparkSession, config: InputConfig) -> InputData:
    """Read Parquet or Delta; attach each row's source file, its modification time, version."""
    table_version: int | None = None
    try:
        if config.format == "delta":
            table_version = _latest_version(spark, config.path)
            reader = spark.read.format("delta").option("versionAsOf", table_version)
            raw = reader.load(config.path)
        else:
            _require_local_folder(config.path)
            raw = spark.read.parquet(config.path)
    except AnalysisException as exc:
        raise InputError(_input_error(config, exc)) from exc
    frame = raw.select(
        "*",
        F.col("_metadata.file_path").alias(C.SOURCE_FILE),
        F.col("_metadata.file_modification_time").alias(C.SOURCE_FILE_MODIFIED_AT),
        F.lit(table_version).cast("bigint").alias(C.SOURCE_TABLE_VERSION),
    )
    return InputData(frame, tuple(raw.inputFiles()), table_version)


def ensure_delta_table(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    comments: Mapping[str, str],
    properties: Mapping[str, str] | None = None,
) -> None:
    """Create the table with an explicit schema and column comments if it does not exist yet."""
    from delta.tables import DeltaTable

    if DeltaTable.isDeltaTable(spark, path):
        return  # later writes add new columns with mergeSchema; existing ones keep their type
    builder = DeltaTable.createIfNotExists(spark).location(path)
    for field in schema.fields:
        builder = builder.addColumn(
            field.name, field.dataType, nullable=True, comment=comments.get(field.name)
        )
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    builder.execute()


def replace_run_rows(
    frame: DataFrame, path: str, run_column: str, run_id: str, user_metadata: Mapping[str, Any]
) -> Commit:
    """Atomically replace every row of `run_id` in the table with `frame` (an idempotent rerun).

    Every commit carries `user_metadata` (with the run id) in Delta's `userMetadata`.
    """
    from delta.tables import DeltaTable

    predicate = f"`{run_column}` = '{_sql_string(run_id)}'"
    metadata = json.dumps(dict(user_metadata), sort_keys=True)
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .option("mergeSchema", "true")
        .option("userMetadata", metadata)
        .save(path)
    )
    # Find our own commit (another writer may have committed since), by its userMetadata.
    history = DeltaTable.forPath(frame.sparkSession, path).history(50)
    ours = history.where(F.col("userMetadata") == metadata).orderBy(F.desc("version")).first()
    if ours is None:
        # Delta skips the commit when there was nothing to add and nothing to replace.
        latest = history.orderBy(F.desc("version")).first()
        return Commit(version=int(latest["version"]) if latest else 0, rows=0)
    metrics = ours["operationMetrics"] or {}
    return Commit(version=int(ours["version"]), rows=int(metrics.get("numOutputRows", 0)))


def read_table(spark: SparkSession, path: str) -> DataFrame | None:
    """A Delta table by path, or None when there is none there yet."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path)


def _latest_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    _require_local_folder(path)
    if not DeltaTable.isDeltaTable(spark, path):
        raise InputError(f"Input {path} is not a Delta table (no _delta_log).")
    return int(DeltaTable.forPath(spark, path).history(1).collect()[0]["version"])


def _require_local_folder(path: str) -> None:
    """Catch the commonest mistake early and clearly: a local input folder that does not exist."""
    if "://" in path and not path.startswith("file:"):
        return
    local = Path(path.removeprefix("file:"))
    if not local.exists():
        raise InputError(f"Input {local} does not exist.")


def _input_error(config: InputConfig, exc: AnalysisException) -> str:
    text = str(exc).splitlines()[0]
    if "UNABLE_TO_INFER_SCHEMA" in text or "Unable to infer schema" in text:
        return f"Input {config.path} holds no readable {config.format} files."
    if "PATH_NOT_FOUND" in text:
        return f"Input {config.path} does not exist."
    return f"Input {config.path} could not be read as {config.format}: {text}"


def _sql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def staging_path(output_path: str, deployment: str, run_id: str) -> str:
    """Where a run keeps its scored rows between scoring and committing: beside the output table
    (never inside it), one folder per deployment and run, replaced by a rerun."""
    parent = output_path.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/_lakescore_staging/{deployment}/{run_id}"


def write_staging(frame: DataFrame, path: str) -> None:
    """Materialise the scored rows once, so both commits read them instead of re-scoring."""
    frame.write.mode("overwrite").parquet(path)


def read_staging(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.parquet(path)


def delete_path(spark: SparkSession, path: str) -> None:
    """Remove a folder through Hadoop's FileSystem, so it works for any storage Spark can write."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path.getFileSystem(hadoop_conf).delete(hadoop_path, True)
