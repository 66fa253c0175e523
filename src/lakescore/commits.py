"""The run's commits: the failed files, then the quarantine and the predictions side by side (or
the quarantine alone, past a limit), each taken back if the other fails."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakescore import columns as C
from lakescore import pipeline
from lakescore.config import Deployment
from lakescore.counts import StagedCounts
from lakescore.errors import LimitExceededError
from lakescore.faults import fault_point
from lakescore.interrupts import carry_job_tags
from lakescore.io import (
    FAILED_FILES_COMMENTS,
    FAILED_FILES_SCHEMA,
    Commit,
    FailedFile,
    committed_version,
    ensure_delta_table,
    failed_files_path,
    lakescore_properties,
    read_table,
    replace_run_rows,
    revert_run_rows,
)
from lakescore.limits import LIMIT_ABORTED, limit_exceeded
from lakescore.model import ResolvedModel
from lakescore.progress import Progress
from lakescore.run_state import RunContext
from lakescore.runs import RunRecord
from lakescore.table_fit import conform

_log = logging.getLogger(__name__)


def commit_tables(
    run: RunContext, validated: pipeline.Validated, staged: DataFrame, summary: StagedCounts
) -> RunRecord:
    """The quarantine and predictions commits (or the abort, past a limit); each of them is
    taken back if the other fails."""
    record = run.state.record
    if summary.rows_failed:
        reasons = {**record.quarantined_by_reason, C.RULE_MODEL_ERROR: summary.rows_failed}
        record = run.state.update(quarantined_by_reason=reasons)
        run.progress.stage(
            f"the model failed on {summary.rows_failed:,} rows: they go to quarantine"
        )
    quarantined = conform(
        pipeline.quarantine(staged, validated.input_columns, run.stamp), run.quarantine_fit
    )
    limit_error = limit_exceeded(
        run.deployment.limits, summary.rows_read, summary.rows_invalid + summary.rows_failed
    )
    if not limit_error and summary.rows_failed and not summary.rows_scored:
        # With or without limits: a run whose model failed on every row it was given is a
        # broken model (version), not a success with nothing to commit.
        limit_error = (
            f"The model failed on every row it was given ({summary.rows_failed:,}); "
            f"{LIMIT_ABORTED}."
        )
    if limit_error:
        abort(run, quarantined, limit_error)

    quarantine_metadata = _metadata(run.deployment, record, run.model, "quarantine")
    predictions_metadata = _metadata(run.deployment, record, run.model, "predictions")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakescore-quarantine") as pool:
        # The two tables are independent and each rerun replaces its run's rows in both, so the
        # quarantine commit (small, mostly Delta log work on the driver) overlaps the predictions.
        # If either fails, both are reverted for this run id (take_back).
        quarantine_commit = pool.submit(
            carry_job_tags(run.spark, _commit_quarantine),
            run.spark,
            run.deployment,
            record,
            quarantined,
            quarantine_metadata,
            run.progress,
        )
        try:
            out = _commit_predictions(
                run.spark,
                run.deployment,
                record,
                conform(pipeline.predictions(staged, run.stamp), run.prediction_fit),
                predictions_metadata,
                run.stats_columns,
            )
            run.progress.stage(_committed_stage(out, "predictions"))
            fault_point("after_predictions_commit")
            quarantined_commit = quarantine_commit.result()
        except BaseException:
            # Either commit may have landed even if its call failed (stopped while it read its
            # version back): each is found by its userMetadata.
            quarantine_commit.cancel()
            _wait_for(quarantine_commit)  # it may commit yet: take it back once it is over
            take_back(run, run.deployment.output.path, "predictions", predictions_metadata)
            take_back(run, run.deployment.quarantine.path, "quarantine", quarantine_metadata)
            raise
    return run.state.update(
        rows_scored=out.rows,
        output_version=out.recorded_version,
        rows_quarantined=quarantined_commit.rows,
        quarantine_version=quarantined_commit.recorded_version,
        finished_at=datetime.now(timezone.utc),
    )


def take_back(run: RunContext, path: str, table: str, user_metadata: Mapping[str, str]) -> None:
    """A later step of the run failed: give `table`'s rows of this run id back the state they
    had before this attempt's commit, so a failed run changes neither table (as a failed check
    does) and the table an earlier attempt completed keeps its rows. The commit is found by its
    `user_metadata` (unique to the attempt), not by what the commit's call returned: that call
    may have failed after Delta committed. Best effort: if this fails too, a rerun of the same
    run id replaces the rows anyway."""
    record = run.state.record
    try:
        version = committed_version(run.spark, path, user_metadata)
        if version is None:
            return  # this attempt never committed to the table
        revert_run_rows(
            run.spark,
            path,
            C.RUN_ID,
            record.run_id,
            version,
            {"lakescore_run_id": record.run_id, "table": table, "action": "revert"},
        )
    except Exception:
        _log.warning("could not revert run %s in %s", record.run_id, path, exc_info=True)
        return
    run.progress.stage(f"reverted this attempt's commit to the {table} table")


def _wait_for(commit: Future[Commit]) -> None:
    """Let a commit running in another thread end; its own error matters less than the
    caller's."""
    try:
        commit.result()
    except CancelledError:
        pass  # it never started
    except Exception:
        _log.warning("the quarantine commit failed too", exc_info=True)


def _commit_predictions(  # the caller has checked that this attempt still owns the run
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    predictions: DataFrame,
    user_metadata: Mapping[str, str],
    stats_columns: str,
) -> Commit:
    ensure_delta_table(
        spark,
        deployment.output.path,
        predictions.schema,
        C.COMMENTS,
        {
            "delta.enableChangeDataFeed": "true",
            "delta.dataSkippingStatsColumns": stats_columns,
            **lakescore_properties(deployment.name),
        },
        deployment.output.table,
    )
    return replace_run_rows(
        predictions,
        deployment.output.path,
        C.RUN_ID,
        record.run_id,
        user_metadata,
    )


def abort(run: RunContext, quarantined: DataFrame, reason: str) -> None:
    """Too many bad rows: commit the quarantine (so the operator sees why), no predictions.
    The caller has checked that this attempt still owns the run.

    The quarantine goes first: if it cannot be committed, the run fails with both tables as
    they were; if an earlier attempt's predictions then cannot be removed, the quarantine
    commit is reverted.
    """
    spark, deployment, record = run.spark, run.deployment, run.state.record
    metadata = _metadata(deployment, record, run.model, "quarantine")
    try:
        commit = _commit_quarantine(spark, deployment, record, quarantined, metadata, run.progress)
        removed = _remove_run_predictions(spark, deployment, record)
    except BaseException:  # Ctrl-C and SIGTERM too
        take_back(run, deployment.quarantine.path, "quarantine", metadata)
        raise
    removed_version = removed.recorded_version if removed is not None else None
    run.state.update(
        rows_quarantined=commit.rows,
        quarantine_version=commit.recorded_version,
        rows_scored=0,
        # The version that removed an earlier attempt's predictions of this run id, if any.
        output_version=removed_version,
    )
    if removed_version is not None:
        reason += (
            f" It removed the predictions an earlier attempt of run {record.run_id} had "
            f"committed (predictions version {removed_version})."
        )
    raise LimitExceededError(reason)


def _commit_quarantine(  # the caller has checked that this attempt still owns the run
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    quarantined: DataFrame,
    user_metadata: Mapping[str, str],
    progress: Progress,
) -> Commit:
    ensure_delta_table(
        spark,
        deployment.quarantine.path,
        quarantined.schema,
        C.COMMENTS,
        lakescore_properties(deployment.name),
        deployment.quarantine.table,
    )
    commit = replace_run_rows(
        quarantined,
        deployment.quarantine.path,
        C.RUN_ID,
        record.run_id,
        user_metadata,
    )
    progress.stage(_committed_stage(commit, "quarantined rows"))
    return commit


def _committed_stage(commit: Commit, rows: str) -> str:
    if not commit.committed:
        return f"no {rows} to commit"
    return f"committed {commit.rows:,} {rows} (version {commit.version})"


def commit_failed_files(
    spark: SparkSession, deployment: Deployment, record: RunRecord, failed: list[FailedFile]
) -> Commit | None:
    """Record unreadable files in a Delta table beside the quarantine, one set per run id."""
    path = failed_files_path(deployment.quarantine.path)
    if not failed and read_table(spark, path) is None:
        return None
    recorded_at = datetime.now(timezone.utc)
    run = (record.run_id, deployment.name, recorded_at, record.attempt, record.attempt_id)
    rows = [(f.path, f.error, *run) for f in failed]
    frame = spark.createDataFrame(rows, FAILED_FILES_SCHEMA).coalesce(1)  # as in runs.write_run
    table = deployment.quarantine.table
    table = f"{table}{C.FAILED_FILES_SUFFIX}" if table else None
    ensure_delta_table(
        spark,
        path,
        FAILED_FILES_SCHEMA,
        FAILED_FILES_COMMENTS,
        lakescore_properties(deployment.name),
        table,
    )
    return replace_run_rows(
        frame, path, C.RUN_ID, record.run_id, failed_files_metadata(deployment, record)
    )


def failed_files_metadata(deployment: Deployment, record: RunRecord) -> dict[str, str]:
    """The userMetadata of this attempt's commit to the failed-files table (how take_back
    finds it)."""
    return {
        "lakescore_run_id": record.run_id,
        "deployment": deployment.name,
        "table": "failed_files",
        "attempt_started_at": record.started_at.isoformat(),
    }


def _remove_run_predictions(
    spark: SparkSession, deployment: Deployment, record: RunRecord
) -> Commit | None:
    """An aborted rerun must not leave an earlier attempt's predictions behind."""
    existing = read_table(spark, deployment.output.path)
    if existing is None or not existing.where(F.col(C.RUN_ID) == record.run_id).limit(1).count():
        return None
    return replace_run_rows(
        existing.limit(0),
        deployment.output.path,
        C.RUN_ID,
        record.run_id,
        {"lakescore_run_id": record.run_id, "table": "predictions", "action": "abort"},
    )


def _metadata(
    deployment: Deployment, record: RunRecord, model: ResolvedModel, table: str
) -> dict[str, str]:
    return {
        "lakescore_run_id": record.run_id,
        "deployment": deployment.name,
        "table": table,
        "model_uri": model.pinned_uri,
        "requested_model_uri": record.requested_model_uri or model.pinned_uri,
        "attempt_started_at": record.started_at.isoformat(),
    }
