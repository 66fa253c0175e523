"""The runs table: one row per run, written when it starts and replaced when it ends."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import __version__
from lakescore.errors import AttemptSupersededError
from lakescore.io import (
    ensure_delta_table,
    lakescore_properties,
    overwrite_run_rows,
    read_table,
)

RUNNING, SUCCEEDED, FAILED, ABORTED = "running", "succeeded", "failed", "aborted"
INTERRUPTED = "interrupted"  # only in previous_attempts: an attempt that never finished

FILES_FAILED_TYPE = T.ArrayType(
    T.StructType([T.StructField("path", T.StringType()), T.StructField("error", T.StringType())])
)

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("deployment", T.StringType()),
        T.StructField("status", T.StringType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
        T.StructField("model_uri", T.StringType()),
        T.StructField("model_name", T.StringType()),
        T.StructField("model_version", T.StringType()),
        T.StructField("input", T.StringType()),
        T.StructField("rows_read", T.LongType()),
        T.StructField("rows_scored", T.LongType()),
        T.StructField("rows_quarantined", T.LongType()),
        T.StructField("files_read", T.LongType()),
        T.StructField("files_failed", FILES_FAILED_TYPE),
        T.StructField("output_version", T.LongType()),
        T.StructField("quarantine_version", T.LongType()),
        T.StructField("error", T.StringType()),
        T.StructField("quarantined_by_reason", T.MapType(T.StringType(), T.LongType())),
        T.StructField("warnings_by_rule", T.MapType(T.StringType(), T.LongType())),
        T.StructField("lakescore_version", T.StringType()),
        T.StructField("attempt", T.IntegerType()),
        T.StructField("attempt_id", T.StringType()),
        T.StructField(
            "executors",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("executor", T.StringType()),
                        T.StructField("tasks", T.LongType()),
                        T.StructField("rows", T.LongType()),
                        T.StructField("rows_failed", T.LongType()),
                    ]
                )
            ),
        ),
        T.StructField(
            "previous_attempts",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("attempt", T.IntegerType()),
                        T.StructField("attempt_id", T.StringType()),
                        T.StructField("started_at", T.TimestampType()),
                        T.StructField("finished_at", T.TimestampType()),
                        T.StructField("status", T.StringType()),
                        T.StructField("error", T.StringType()),
                        # What the attempt committed, so a failed rerun (whose record replaces
                        # this one) does not lose the account of the rows the tables still hold.
                        T.StructField("model_version", T.StringType()),
                        T.StructField("rows_read", T.LongType()),
                        T.StructField("rows_scored", T.LongType()),
                        T.StructField("rows_quarantined", T.LongType()),
                        T.StructField("output_version", T.LongType()),
                        T.StructField("quarantine_version", T.LongType()),
                        # Which files those rows came from and why some are in quarantine.
                        T.StructField("files_read", T.LongType()),
                        T.StructField("files_failed", FILES_FAILED_TYPE),
                        T.StructField(
                            "quarantined_by_reason", T.MapType(T.StringType(), T.LongType())
                        ),
                        T.StructField("warnings_by_rule", T.MapType(T.StringType(), T.LongType())),
                    ]
                )
            ),
        ),
        # Last, where Delta's mergeSchema adds them to a runs table made before they existed.
        T.StructField("requested_model_uri", T.StringType()),
        T.StructField("input_version", T.LongType()),
    ]
)

# The fields of an earlier attempt copied from its record into `previous_attempts`; runs tables
# made before the fields after `error` were added get them on their next write (mergeSchema).
ATTEMPT_FIELDS: tuple[str, ...] = tuple(
    RUNS_SCHEMA["previous_attempts"].dataType.elementType.fieldNames()  # type: ignore[attr-defined]
)

RUNS_COMMENTS = {
    "run_id": "run identifier (--run-id, or generated on the driver)",
    "deployment": "deployment name",
    "status": "running, succeeded, failed or aborted",
    "started_at": "when the run started (UTC)",
    "finished_at": "when the run ended (UTC); null while running",
    "model_uri": "model URI pinned for the run (as requested, if it could not be resolved)",
    "model_name": "registered model name",
    "model_version": "model version the run used",
    "input": "input location read, or a catalog input's table name",
    "rows_read": "rows read from the input",
    "rows_scored": "rows committed to the predictions table",
    "rows_quarantined": "rows committed to the quarantine table",
    "files_read": "input files read",
    "files_failed": "input files that could not be read, with the error",
    "output_version": "Delta version of the predictions commit (null: nothing to commit)",
    "quarantine_version": "Delta version of the quarantine commit (null: nothing to commit)",
    "error": "why the run failed or was aborted, or why the counts do not reconcile",
    "quarantined_by_reason": "quarantined rows per check (rule or rule:column)",
    "warnings_by_rule": "scored rows that broke a warn rule",
    "lakescore_version": "lakescore version that ran",
    "attempt": "1 for the first run of this run id, then 2, 3, ... for each rerun",
    "attempt_id": "unique id of this attempt; only the newest attempt of a run id may commit",
    "executors": (
        "per executor (host/id): scoring tasks, rows the model scored, rows it failed on "
        "(in the pass, before the commits: an aborted or failed run commits none of them)"
    ),
    "previous_attempts": (
        "earlier attempts of this run id, with their counts, files and Delta versions; "
        "`interrupted` = it never finished"
    ),
    "requested_model_uri": "model URI as the deployment gave it (an alias: which one was used)",
    "input_version": "version of the Delta input read (versionAsOf); null for Parquet input",
}


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""

    run_id: str
    deployment: str
    status: str
    started_at: datetime
    input: str
    finished_at: datetime | None = None
    model_uri: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    rows_read: int | None = None
    rows_scored: int | None = None
    rows_quarantined: int | None = None
    files_read: int | None = None
    files_failed: list[dict[str, str]] = field(default_factory=list)
    output_version: int | None = None
    quarantine_version: int | None = None
    error: str | None = None
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)
    lakescore_version: str = __version__
    attempt: int = 1
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    executors: list[dict[str, Any]] = field(default_factory=list)
    previous_attempts: list[dict[str, Any]] = field(default_factory=list)
    requested_model_uri: str | None = None
    input_version: int | None = None

    def with_(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)

    def reconciles(self) -> bool:
        """rows_read == rows_scored + rows_quarantined."""
        return self.rows_read is not None and self.rows_read == (self.rows_scored or 0) + (
            self.rows_quarantined or 0
        )


FILES_KEPT_PER_ATTEMPT = 100  # unreadable files an earlier attempt's summary names


def next_attempt(record: RunRecord, earlier: dict[str, Any] | None) -> RunRecord:
    """Number this attempt and keep the history of earlier attempts of the same run id.

    An earlier attempt still marked `running` was killed or crashed: it becomes `interrupted`.
    """
    if earlier is None:
        return record
    number: int = earlier.get("attempt") or 1
    summary = {name: earlier.get(name) for name in ATTEMPT_FIELDS} | {"attempt": number}
    # Every later record carries this summary again: keep its list of files bounded (the
    # failed-files table has them all, by attempt_id).
    summary["files_failed"] = (earlier.get("files_failed") or [])[:FILES_KEPT_PER_ATTEMPT]
    if earlier["status"] == RUNNING:
        summary["status"] = INTERRUPTED
    history = [*(earlier.get("previous_attempts") or []), summary]
    return record.with_(attempt=number + 1, previous_attempts=history)


def require_ownership(
    spark: SparkSession, path: str, record: RunRecord, committed: bool = False
) -> None:
    """Stop before committing when a newer attempt of the same run id has claimed it, so two
    attempts running at once can never both commit; `committed`: checked again before writing
    the record, after this attempt's commits (the newer one claimed the run meanwhile)."""
    current = get_run(spark, path, record.run_id)
    # An earlier attempt's row is still there when this attempt's `running` record could not
    # be written (a stop cancelled it, storage failed): that attempt supersedes nothing.
    if (
        current is not None
        and current.get("attempt_id") != record.attempt_id
        and (current.get("attempt") or 1) >= record.attempt
    ):
        outcome = (
            "this attempt's rows are committed, and are replaced when that attempt commits; "
            "its record, not this one's, is the run's"
            if committed
            else "this attempt stops without committing"
        )
        raise AttemptSupersededError(
            f"Run {record.run_id} was started again (attempt {current.get('attempt')}, "
            f"{current['started_at']}) while this attempt was running; {outcome}."
        )


def write_run(
    spark: SparkSession, path: str, record: RunRecord, table_name: str | None = None
) -> None:
    """Insert or replace this run's row."""
    ensure_delta_table(
        spark,
        path,
        RUNS_SCHEMA,
        RUNS_COMMENTS,
        lakescore_properties(record.deployment),
        table_name,
    )
    # One partition: a local frame is split into one per core, and Delta writes a data file for
    # each empty one too, never referenced by the table (left for VACUUM).
    frame = spark.createDataFrame([asdict(record)], RUNS_SCHEMA).coalesce(1)
    overwrite_run_rows(
        frame,
        path,
        "run_id",
        record.run_id,
        {**attempt_metadata(record), "table": "runs", "status": record.status},
    )


def attempt_metadata(record: RunRecord) -> dict[str, str]:
    """What tells this attempt's commits from any other's, in every table (how a failed run
    finds its own commits, and how a reader of a table's history tells attempts apart)."""
    return {
        "lakescore_run_id": record.run_id,
        "attempt_id": record.attempt_id,
        "attempt_started_at": record.started_at.isoformat(),
    }


def list_runs(
    spark: SparkSession, path: str, limit: int = 50, deployment: str | None = None
) -> list[dict[str, Any]]:
    """The newest runs first; only `deployment`'s when given (deployments may share a runs
    table, each with its own output tables)."""
    table = read_table(spark, path) if path else None
    if table is None:
        return []
    if deployment is not None:
        table = table.where(F.col("deployment") == deployment)
    rows = table.orderBy(F.desc("started_at")).limit(limit).collect()
    return [_in_utc(row.asDict(recursive=True)) for row in rows]


def get_run(spark: SparkSession, path: str, run_id: str) -> dict[str, Any] | None:
    table = read_table(spark, path) if path else None
    if table is None:
        return None
    row = table.where(F.col("run_id") == run_id).first()
    return _in_utc(row.asDict(recursive=True)) if row else None


def _in_utc(value: Any) -> Any:
    """PySpark collects timestamps as naive datetimes in the process's local time zone: make
    them UTC, with the offset, as the tables' comments and `score --json` state them."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {key: _in_utc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_utc(item) for item in value]
    return value
