"""The run's commits: the failed files, then the quarantine and the predictions side by side (or
the quarantine alone, past a limit), each taken back if the other fails."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakescore import columns as C
from lakescore import pipeline
from lakescore.config import Deployment
from lakescore.counts import StagedCounts
from lakescore.errors import AttemptSupersededError, LimitExceededError
from lakescore.faults import fault_point
from lakescore.interrupts import carry_local_properties
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
from lakescore.runs import RunRecord, attempt_metadata, require_ownership
from lakescore.table_fit import conform

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


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
    # Built before either commit starts (see Commits: no Py4J call of this thread overlaps one).
    predictions = conform(pipeline.predictions(staged, run.stamp), run.prediction_fit)
    with Commits(run) as commits:
        # The two tables are independent and each rerun replaces its run's rows in both, so the
        # quarantine commit (small, mostly Delta log work on the driver) overlaps the predictions.
        # If either fails, both are reverted for this run id.
        try:
            quarantine_commit = commits.start(
                "quarantine",
                run.deployment.quarantine.path,
                quarantine_metadata,
                functools.partial(
                    _commit_quarantine,
                    run.spark,
                    run.deployment,
                    record,
                    quarantined,
                    quarantine_metadata,
                    run.progress,
                ),
            )
            predictions_commit = commits.start(
                "predictions",
                run.deployment.output.path,
                predictions_metadata,
                functools.partial(
                    _commit_predictions,
                    run.spark,
                    run.deployment,
                    record,
                    predictions,
                    predictions_metadata,
                    run.stats_columns,
                    run.progress,
                ),
            )
            out = _landed(predictions_commit.result())
            fault_point("after_predictions_commit")
            quarantined_commit = _landed(quarantine_commit.result())
            # Both landed: a signal from here on changes nothing (the pool's shutdown below
            # waits, and a stop there would be taken as one during the commits).
            run.state.stop.ending()
        except BaseException as error:
            commits.take_back(error)
            raise
    return run.state.update(
        rows_scored=out.rows,
        output_version=out.recorded_version,
        rows_quarantined=quarantined_commit.rows,
        quarantine_version=quarantined_commit.recorded_version,
        finished_at=datetime.now(UTC),
    )


@dataclass(frozen=True)
class _Started:
    """A commit on a worker thread, and how to find it in its table's history."""

    table: str
    path: str
    user_metadata: Mapping[str, str]
    future: Future[Commit | None]


class Commits:
    """A run's commits, each on a worker thread with the run's job tags.

    A stop (Ctrl-C, SIGTERM) then interrupts the wait for a commit, never the commit's own
    Python call: the JVM goes on with a commit whose call was cut, and could land it after the
    run had looked for it to take it back. When the run fails, `take_back` waits for every
    commit started, then reverts each one that landed, found by its userMetadata when its call
    failed (it may have failed after Delta committed: a job cancelled while it read its version
    back).
    """

    def __init__(self, run: RunContext) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lakescore-commit")
        self._started: list[_Started] = []
        # The job tags are read now, before any commit runs: no Py4J call of the main thread
        # (which a stop's KeyboardInterrupt could cut, closing Py4J's pooled connections) may
        # overlap a commit.
        self._tagged = carry_local_properties(run.spark, _call)

    def __enter__(self) -> Commits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)

    def start(
        self,
        table: str,
        path: str,
        user_metadata: Mapping[str, str],
        commit: Callable[[], Commit | None],
    ) -> Future[Commit | None]:
        """Start `commit` (which writes `user_metadata` with it) on a worker thread."""
        future = self._pool.submit(self._tagged, commit)
        self._started.append(_Started(table, path, user_metadata, future))
        return future

    def take_back(self, error: BaseException) -> None:
        """`error` ends the run: give each table the run committed to its rows of this run id
        as they were before this attempt, so a failed run changes no table (as a failed check
        does) and the rows an earlier attempt completed stay. Best effort: if a revert fails
        too, a rerun of the same run id replaces the rows anyway."""
        stop = self._run.state.stop
        with stop.ignored():  # a signal now must not cut the take-backs short
            for started in self._started:
                started.future.cancel()  # one not started yet never will be
            pending = {started.future for started in self._started}
            while pending:
                if stop.stopped:
                    stop.cancel_jobs()  # a job a commit started after the stop's own cancel
                pending = futures.wait(pending, timeout=1.0).not_done
            landed = []
            for started in self._started:
                failure = None if started.future.cancelled() else started.future.exception()
                if failure is not None and failure is not error:
                    _log.warning("the %s commit failed too", started.table, exc_info=failure)
                landed.append((started, _landed_version(self._run, started)))
            kept = [started.table for started, version in landed if version is not None]
            if kept and self._superseded():
                self._run.state.left_to_newer.extend(kept)  # the run's error says so
                return
            for started, version in reversed(landed):
                if version is not None:
                    _take_back(self._run, started, version)
            self._run.state.took_back = True  # but for the tables `unreverted` names

    def _superseded(self) -> bool:
        """Whether a newer attempt of the run id has claimed it: a revert puts back the rows
        the run id had before this attempt's commit, and would remove any that attempt has
        committed since (it replaces this attempt's rows anyway when it commits)."""
        run = self._run
        try:
            require_ownership(run.spark, run.deployment.runs.path, run.state.record, committed=True)
        except AttemptSupersededError as superseded:
            _log.warning("not taking back this attempt's commits: %s", superseded)
            return True
        except Exception:  # the runs table unreadable: revert, as before the check
            _log.warning("could not check who owns the run", exc_info=True)
        return False


def _call(work: Callable[[], _T]) -> _T:
    return work()


def _landed(commit: Commit | None) -> Commit:
    assert commit is not None  # predictions and quarantine commits always return one
    return commit


def _take_back(run: RunContext, started: _Started, version: int) -> None:
    """Give the table's rows of this run id back the state they had before `version`."""
    record = run.state.record
    try:
        revert_run_rows(
            run.spark,
            started.path,
            C.RUN_ID,
            record.run_id,
            version,
            {**attempt_metadata(record), "table": started.table, "action": "revert"},
        )
    except Exception:
        _log.warning("could not revert run %s in %s", record.run_id, started.path, exc_info=True)
        run.state.unreverted.append(started.table)  # the run's record says so
        return
    run.progress.stage(f"reverted this attempt's commit to the {started.table} table")


def _landed_version(run: RunContext, started: _Started) -> int | None:
    """The version a commit landed as, or None: what its call returned, else (the call failed,
    perhaps after Delta committed) the version carrying its userMetadata, if any."""
    future = started.future
    if future.cancelled():
        return None
    if future.exception() is None:
        commit = future.result()
        return commit.version if commit is not None and commit.committed else None
    try:
        return committed_version(run.spark, started.path, started.user_metadata)
    except Exception:
        _log.warning("could not look for this attempt's commit in %s", started.path, exc_info=True)
        run.state.unchecked.append(started.table)  # it may have landed: the record says so
        return None


def _commit_predictions(  # the caller has checked that this attempt still owns the run
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    predictions: DataFrame,
    user_metadata: Mapping[str, str],
    stats_columns: str,
    progress: Progress,
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
    commit = replace_run_rows(
        predictions,
        deployment.output.path,
        C.RUN_ID,
        record.run_id,
        user_metadata,
    )
    progress.stage(_committed_stage(commit, "predictions"))
    return commit


def abort(run: RunContext, quarantined: DataFrame, reason: str) -> None:
    """Too many bad rows: commit the quarantine (so the operator sees why), no predictions.
    The caller has checked that this attempt still owns the run.

    The quarantine goes first: if it cannot be committed, the run fails with both tables as
    they were; if an earlier attempt's predictions then cannot be removed, the quarantine
    commit is reverted (and the removal too, if it landed before its call failed).
    """
    spark, deployment, record = run.spark, run.deployment, run.state.record
    metadata = _metadata(deployment, record, run.model, "quarantine")
    removal = {**attempt_metadata(record), "table": "predictions", "action": "abort"}
    with Commits(run) as commits:
        try:
            commit = commits.start(
                "quarantine",
                deployment.quarantine.path,
                metadata,
                functools.partial(
                    _commit_quarantine,
                    spark,
                    deployment,
                    record,
                    quarantined,
                    metadata,
                    run.progress,
                ),
            ).result()
            removed = commits.start(
                "predictions",
                deployment.output.path,
                removal,
                functools.partial(_remove_run_predictions, spark, deployment, record, removal),
            ).result()
            run.state.stop.ending()  # both landed: as in commit_tables
        except BaseException as error:  # Ctrl-C and SIGTERM too
            commits.take_back(error)
            raise
    commit = _landed(commit)
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
    recorded_at = datetime.now(UTC)
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
    """The userMetadata of this attempt's commit to the failed-files table."""
    return {**attempt_metadata(record), "deployment": deployment.name, "table": "failed_files"}


def _remove_run_predictions(
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    user_metadata: Mapping[str, str],
) -> Commit | None:
    """An aborted rerun must not leave an earlier attempt's predictions behind."""
    existing = read_table(spark, deployment.output.path)
    if existing is None or not existing.where(F.col(C.RUN_ID) == record.run_id).limit(1).count():
        return None
    return replace_run_rows(
        existing.limit(0), deployment.output.path, C.RUN_ID, record.run_id, user_metadata
    )


def _metadata(
    deployment: Deployment, record: RunRecord, model: ResolvedModel, table: str
) -> dict[str, str]:
    return {
        **attempt_metadata(record),
        "deployment": deployment.name,
        "table": table,
        "model_uri": model.pinned_uri,
        "requested_model_uri": record.requested_model_uri or model.pinned_uri,
    }
