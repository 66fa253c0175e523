"""One scoring run end to end: read → validate → score → split → commit → record.

Only orchestration lives here; the logic is in pipeline.py (pure) and the I/O in io.py/runs.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote

import numpy as np
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.errors.exceptions.base import QueryContextType
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import __version__, pipeline
from lakescore import columns as C
from lakescore.catalog import resolve_tables
from lakescore.completeness import (
    ExpectedFile,
    missing_after_counting,
    missing_before_reading,
    parse_manifest,
)
from lakescore.config import Deployment, Limits, Rule, check_locations
from lakescore.errors import (
    AttemptSupersededError,
    DeploymentError,
    IncompleteInputError,
    InputError,
    LakescoreError,
    LimitExceededError,
    NoReadableInputError,
    RuleFailedError,
    ScoringError,
    TableSchemaError,
    UsageError,
    interruption,
    python_error_message,
    spark_error_message,
    with_cause,
)
from lakescore.faults import fault_point
from lakescore.interrupts import Stop, carry_job_tags, stoppable
from lakescore.io import (
    FAILED_FILES_COMMENTS,
    FAILED_FILES_SCHEMA,
    Commit,
    FailedFile,
    attempt_staging_path,
    delete_staging,
    ensure_delta_table,
    failed_file_in,
    failed_files_path,
    failed_records,
    path_exists,
    read_input,
    read_staging,
    read_table,
    read_text,
    relative_names,
    replace_run_rows,
    revert_run_rows,
    staging_path,
    table_schema,
    write_staging,
)
from lakescore.model import ResolvedModel, resolve_model
from lakescore.progress import SILENT, Progress
from lakescore.redaction import scrub
from lakescore.runs import (
    ABORTED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    SUCCEEDED,
    RunRecord,
    get_run,
    next_attempt,
    require_ownership,
    write_run,
)
from lakescore.scoring import scoring_udf, ship_model
from lakescore.session import require_classic
from lakescore.spark_logs import query_context_logs_quieted
from lakescore.table_fit import Fit, conform, fit, left_null
from lakescore.validate import TIME_TYPES

_log = logging.getLogger(__name__)
# Column types Delta can keep min/max statistics for (data skipping).
_STATS_TYPES = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)
# Spark's default Parquet timestamps are INT96, which delta-rs and polars read as nanoseconds and
# fail on outside 1677-2262 (a 9999-12-31 kept in the quarantine): a borrowed session gets the
# standard type for the run's writes, as lakescore's own sessions have it throughout.
_STANDARD_TIMESTAMPS = ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
# A session (a notebook's, a cluster's defaults) may skip corrupt or missing files: the rows of
# such a file would be in no table and recorded nowhere. The run reads every file or fails it.
# (A Delta read ignores the reader's options for these: only the session settings reach it.)
_EVERY_FILE_READ = (
    ("spark.sql.files.ignoreCorruptFiles", "false"),
    ("spark.sql.files.ignoreMissingFiles", "false"),
)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RunResult:
    record: RunRecord
    deployment: Deployment

    @property
    def succeeded(self) -> bool:
        return self.record.status == SUCCEEDED


def new_run_id() -> str:
    """A sortable, unique run id made on the driver."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def check_run_id(run_id: str) -> str:
    """The run id as given, or UsageError. An empty one is refused, not replaced by a new id: a
    scheduler passing `--run-id "$RUN_ID"` with the variable unset would get retries that no
    longer replace each other's rows."""
    if not _RUN_ID.match(run_id):
        raise UsageError(
            f"Run id {run_id!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '.', ':' and '-' (at most 128)."
        )
    return run_id


def score(
    spark: SparkSession,
    deployment: Deployment,
    run_id: str | None = None,
    progress: Progress = SILENT,
) -> RunResult:
    """Run the deployment once. Raises a LakescoreError (after recording the run) on failure."""
    require_classic(spark)  # a Connect session can neither run nor record the run
    run_id = new_run_id() if run_id is None else check_run_id(run_id)
    deployment = resolve_tables(spark, deployment)
    check_locations(deployment)
    started = datetime.now(timezone.utc)
    record = RunRecord(
        run_id,
        deployment.name,
        RUNNING,
        started,
        scrub(deployment.input.path),
        # As requested until it is pinned: a run whose model cannot be resolved still says which.
        model_uri=scrub(deployment.model.uri),
        requested_model_uri=scrub(deployment.model.uri),
    )
    earlier = get_run(spark, deployment.runs.path, run_id)
    if earlier is not None and earlier["deployment"] != deployment.name:
        # Every table write replaces the rows of the run id: a run of this deployment would
        # delete the other deployment's rows in any table the two share.
        raise DeploymentError(
            f"Run id {run_id} is already recorded in {scrub(deployment.runs.path)} for deployment "
            f"{earlier['deployment']}; choose a run id that deployment {deployment.name} "
            "does not share (for example, prefix it with the deployment's name)."
        )
    record = next_attempt(record, earlier)
    progress.stage(f"run {run_id} of {deployment.name} started")
    with (
        query_context_logs_quieted(),  # the run reports the errors it catches itself
        stoppable(spark, f"lakescore-{run_id}-{record.attempt_id}") as stop,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakescore-run-record") as pool,
    ):
        # The `running` record is written while the driver resolves the model and lists the
        # input (the first Delta write of a fresh JVM takes seconds); scoring waits for it.
        state = _RunState(
            record,
            # Not tagged: a stop must not cancel the record it then replaces.
            pool.submit(write_run, spark, deployment.runs.path, record, deployment.runs.table),
            deployment.runs.path,
            stop,
        )
        try:
            if stop.stopped:  # a signal while the handlers were being installed
                raise stop.exception()
            with tempfile.TemporaryDirectory(prefix="lakescore-run-") as workdir:
                record = _score(spark, deployment, state, progress, workdir)
            stop.ending()  # a signal from here on does not change how the run ends
        except AttemptSupersededError:
            raise  # the newer attempt owns the run record now
        except BaseException as exc:
            stop.ending()  # nor does one while the run takes back its commits and records
            _end_failed_run(spark, deployment, state, progress, exc)
        try:
            _finish(spark, deployment, record, progress)
        except (Py4JJavaError, PySparkException) as exc:
            versions = ", ".join(
                f"{table} version {version}"
                for table, version in (
                    ("predictions", record.output_version),
                    ("quarantine", record.quarantine_version),
                )
                if version is not None
            )
            raise LakescoreError(
                f"Run {run_id} committed its rows ({versions or 'no rows to commit'}) "
                f"but could not record itself in the runs table at "
                f"{scrub(deployment.runs.path)}: {spark_error_message(exc)}"
            ) from exc
    if record.status != SUCCEEDED:  # counts that do not reconcile: recorded as failed
        _raise_with_record(LakescoreError(record.error or f"Run {run_id} failed."), record, None)
    return RunResult(record, deployment)


def _end_failed_run(
    spark: SparkSession,
    deployment: Deployment,
    state: _RunState,
    progress: Progress,
    exc: BaseException,
) -> NoReturn:
    """Record why the run ended and raise what the caller must see: the LakescoreError, or
    the stop (KeyboardInterrupt or Terminated, whichever exception it surfaced as), or the
    unexpected error."""
    run_id = state.record.run_id
    expected = LakescoreError | Py4JJavaError | PySparkException
    if not state.stop.stopped and isinstance(exc, expected):
        error = (
            exc
            if isinstance(exc, LakescoreError)
            else LakescoreError(f"Run {run_id} failed: {spark_error_message(exc)}")
        )
        aborted = isinstance(error, LimitExceededError | IncompleteInputError)
        failed = _failed(state.record, error, ABORTED if aborted else FAILED)
        state.wait_quietly()
        _drop_older_staging(spark, deployment, failed)
        _record_failure(spark, deployment, failed, progress, error)
        _raise_with_record(error, failed, exc)
    # Stopped by a signal (Py4J may surface it as an error of the connection it closed), a
    # cancelled notebook cell, or a bug: record the end anyway, or the runs table would say
    # `running` for ever.
    stopped = _stopped(state, exc)
    failed = _failed(state.record, LakescoreError(stopped), FAILED)
    recorded = _record_quietly(spark, deployment, state, failed, progress)
    if state.stop.stopped:
        # What the runs table now says (the run id, rows an earlier attempt left), or why not.
        said = (
            str(failed.error)
            if recorded
            else stopped.removesuffix(".")
            + "; the run could not record this, so the runs table still shows what it held "
            "before (this run's `running` record, or an earlier attempt's)."
        )
        _raise_with_record(state.stop.exception(said), failed if recorded else None, exc)
    _raise_with_record(exc, failed if recorded else None, None)


def _raise_with_record(
    error: BaseException, record: RunRecord | None, exc: BaseException | None
) -> NoReturn:
    """Raise `error` carrying the run's record as written (None if it could not be)."""
    with contextlib.suppress(AttributeError):  # an exception type that takes no attributes
        error.run_record = asdict(record) if record else None  # type: ignore[attr-defined]
    if exc is None or exc is error:
        raise error
    raise error from exc


def _stopped(state: _RunState, exc: BaseException) -> str:
    """The error of a run that neither failed in an expected way nor finished."""
    run_id = state.record.run_id
    if state.stop.stopped:
        said = f"Run {run_id} was {state.stop.describe()} before it finished"
    elif isinstance(exc, Exception):
        detail = str(exc).strip().splitlines()[0].rstrip(". ") if str(exc).strip() else ""
        said = f"Run {run_id} failed with an unexpected {type(exc).__name__}" + (
            f": {detail}" if detail else ""
        )
    else:
        said = f"Run {run_id} was {interruption(exc)} before it finished"
    if state.committing:
        said += f"; {STOPPED_COMMITTING} (a rerun of this run id replaces them)"
    return said + "."


def _record_quietly(
    spark: SparkSession,
    deployment: Deployment,
    state: _RunState,
    record: RunRecord,
    progress: Progress,
) -> bool:
    """Best effort, on the way out of a stopped run: the stop is what the caller must see,
    even when the record cannot be written (a signal to the whole process group stops
    Spark's JVM too). Whether the record was written."""
    try:
        state.wait_quietly()
        _drop_older_staging(spark, deployment, record)
        _finish(spark, deployment, record, progress)
    except BaseException:  # a second Ctrl-C where lakescore could not take the signals over
        _log.warning("run %s could not record how it ended", record.run_id, exc_info=True)
        return False
    return True


def _drop_older_staging(spark: SparkSession, deployment: Deployment, record: RunRecord) -> None:
    """A failed rerun still removes the staging a killed earlier attempt of its run id left
    (a run that commits does so after its commits). Called once this attempt's record is in
    the runs table, so no older attempt can still pass the ownership check and commit."""
    if record.attempt == 1:
        return
    run_staging, own = _staging_folders(deployment, record)
    try:
        delete_staging(spark, run_staging, record.attempt, own)
    except Exception:  # cleanup only: the run's own error matters more
        _log.warning("could not remove the staging of run %s", record.run_id, exc_info=True)


def _staging_folders(deployment: Deployment, record: RunRecord) -> tuple[str, str]:
    """The run id's staging folder and this attempt's folder inside it."""
    run_staging = staging_path(deployment.output.path, deployment.name, record.run_id)
    return run_staging, attempt_staging_path(run_staging, record.attempt, record.attempt_id)


def _record_failure(
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    progress: Progress,
    error: LakescoreError,
) -> None:
    """Record a failed run; when the runs table cannot take the record either (the usual reason
    the run failed so early), raise the run's error with that said, not the storage traceback.
    The error itself is reworded, not rebuilt: what it carries (the files that could not be
    read, say) stays with it."""
    try:
        _finish(spark, deployment, record, progress)
    except (Py4JJavaError, PySparkException) as exc:
        reason = spark_error_message(exc)
        where = f"the runs table at {scrub(deployment.runs.path)}"
        said = str(error).rstrip(". ") + "."
        error.args = (
            f"{said} Its failure could not be recorded in {where} either."
            if reason in str(error)
            else f"{said} The run could not be recorded in {where} either: {reason}",
        )
        raise error from exc


class _RunState:
    """The record as far as the run got, so a failure is recorded with everything known."""

    def __init__(
        self, record: RunRecord, recorded: Future[None], record_path: str, stop: Stop
    ) -> None:
        self.record = record
        self.record_path = record_path  # the runs table
        self.stop = stop  # the run's signal handling and job tag
        self.files: tuple[str, ...] = ()
        self.committing = False  # set once the first table commit may have begun
        self._recorded = recorded

    def wait_until_recorded(self) -> None:
        """Block until the `running` record is written; raise what writing it raised."""
        try:
            self._recorded.result()
        except (Py4JJavaError, PySparkException) as exc:
            raise LakescoreError(
                f"Run {self.record.run_id} could not write its record to the runs table at "
                f"{scrub(self.record_path)}: {spark_error_message(exc)}"
            ) from exc

    def wait_quietly(self) -> None:
        """On the way out after a failure: the final record replaces the first either way."""
        try:
            self._recorded.result()
        except Exception as exc:  # the final write reports a storage problem again
            _log.debug("writing the running record failed", exc_info=True)
            _log.warning("writing the running record failed: %s", spark_error_message(exc))

    def update(self, **changes: Any) -> RunRecord:
        self.record = self.record.with_(**changes)
        return self.record


def _score(
    spark: SparkSession,
    deployment: Deployment,
    state: _RunState,
    progress: Progress,
    workdir: str,
) -> RunRecord:
    """Resolve the model into `workdir` (removed after the run), then score the input."""
    progress.stage(f"resolving model {deployment.model.uri}")
    model = resolve_model(
        deployment.model.uri,
        deployment.model.tracking_uri,
        os.path.join(workdir, "model"),
        deployment.scoring.result_type,
    )
    state.update(
        model_uri=model.pinned_uri, model_name=model.name, model_version=model.version_label
    )
    progress.stage(f"model pinned to {model.describe()}")
    archive = ship_model(spark, model.local_path)
    failed_later: list[FailedFile] = []
    while True:
        try:
            return _score_input(spark, deployment, state, progress, model, archive, failed_later)
        except (Py4JJavaError, PySparkException) as exc:
            text = str(exc.java_exception) if isinstance(exc, Py4JJavaError) else str(exc)
            bad = failed_file_in(text, state.files)
            if bad is None or bad in {f.path for f in failed_later}:
                raise
            if deployment.input.format == "delta":
                # A Delta version is read whole or not at all: no file can be left out.
                raise InputError(
                    f"Data file {bad} of Delta table {deployment.input.path} could not be read "
                    f"({with_cause(exc)}); a VACUUM or a damaged table removes files "
                    "that a version still needs. Nothing was committed."
                ) from exc
            failed_later.append(FailedFile(bad, with_cause(exc)))
            progress.stage(f"{bad} failed while being read; reading the input again without it")


def _score_input(
    spark: SparkSession,
    deployment: Deployment,
    state: _RunState,
    progress: Progress,
    model: ResolvedModel,
    archive: str,
    failed_later: list[FailedFile],
) -> RunRecord:
    """One pass from reading to the last commit; idempotent, so it can be redone without a file
    that failed halfway (its rows are then in no table at all)."""
    try:
        data = read_input(spark, deployment.input, exclude=[f.path for f in failed_later])
    except NoReadableInputError as exc:
        unread = [*(FailedFile(**f) for f in exc.files_failed), *failed_later]
        state.update(files_read=0, files_failed=failed_records(unread))
        _require_listed_complete(spark, deployment, [], unread)  # input.expect says it first
        raise
    pipeline.refuse_reserved_names(data.frame)
    carried = pipeline.carried_columns(deployment.input.key, deployment.input.passthrough)
    spelled = [*(c.name for c in model.inputs or ()), *carried, *deployment.quarantine.redact]
    data = replace(data, frame=pipeline.respell(data.frame, spelled))
    failed = [*data.failed, *failed_later]
    state.files = data.files
    record = state.update(
        files_read=len(data.files),
        files_failed=failed_records(failed),
        input_version=data.table_version,
    )
    progress.stage(
        f"reading {len(data.files)} {deployment.input.format} file(s) from {deployment.input.path}"
        + (f"; {len(failed)} could not be read" if failed else "")
    )
    fault_point("after_listing")
    manifest, names = _require_listed_complete(spark, deployment, data.files, failed)
    inputs = pipeline.model_inputs(model, data.frame, deployment.input.key)
    pipeline.check_input_columns(
        data.frame,
        inputs,
        deployment.input.key,
        deployment.input.passthrough,
        model.outputs,
        model.describe(),
    )
    # Lineage columns are not the input's (redact would skip them, and leave them in clear).
    unknown = [
        c for c in deployment.quarantine.redact if c not in pipeline.user_columns(data.frame)
    ]
    if unknown:
        raise DeploymentError(
            f"quarantine.redact names {', '.join(unknown)}, which the input lacks; it has "
            f"{', '.join(pipeline.user_columns(data.frame))}."
        )
    # Without a signature there is nothing to check the values against: only the rules apply,
    # and the model gets the columns as read (NaN included: many models take it). Times still
    # have to fit pandas, and text has to be UTF-8, or their batch cannot reach the model at all.
    checked = model.inputs or tuple(c for c in inputs if c.spark_type in (*TIME_TYPES, "string"))
    _check_rules_parse(pipeline.typed_inputs(data.frame, checked), deployment)
    validated = pipeline.validate(
        data.frame, checked, deployment.rules, deployment.quarantine.redact
    )
    stamp = pipeline.RunStamp(record.run_id, datetime.now(timezone.utc), model)
    state.wait_until_recorded()
    fault_point("before_scoring")
    run_staging, staging = _staging_folders(deployment, record)
    staged_rows = _staged(
        spark, deployment, validated, inputs, carried, model, archive, data.table_version
    )
    # Both checked before the pass, so neither a wrong output.stats_columns (it applies when
    # lakescore creates the table) nor a column an existing table stores as another type costs
    # a pass.
    predictions_schema = pipeline.predictions(staged_rows, stamp).schema
    output_schema = table_schema(spark, deployment.output.path)
    _warn_of_empty_columns(left_null(predictions_schema, output_schema), deployment, model)
    stats_columns = (
        _stats_columns(deployment, model, predictions_schema) if output_schema is None else ""
    )
    quarantine_schema = pipeline.quarantine(staged_rows, validated.input_columns, stamp).schema
    run = _Run(
        spark,
        deployment,
        state,
        progress,
        model,
        stamp,
        stats_columns,
        # Only input columns can be null in every file; a model output of the same name cannot.
        _checked(
            fit(predictions_schema, output_schema, _among(data.all_null, carried)),
            "predictions",
            deployment.output.path,
            model,
        ),
        _checked(
            fit(
                quarantine_schema,
                table_schema(spark, deployment.quarantine.path),
                _among(data.all_null, validated.input_columns),
            ),
            "quarantine",
            deployment.quarantine.path,
            model,
        ),
    )
    batch = ("spark.sql.execution.arrow.maxRecordsPerBatch", str(deployment.scoring.batch_size))
    try:
        with contextlib.ExitStack() as settings:
            for key, value in (batch, _STANDARD_TIMESTAMPS, *_EVERY_FILE_READ):
                settings.enter_context(_session_conf(spark, key, value))
            record = _stage_and_commit(
                run, validated, staged_rows, staging, _Completeness(failed, manifest, names)
            )
    finally:
        # Staging holds the rows to quarantine as read: leave none behind, nor anything that
        # killed earlier attempts of this run left; a newer attempt's folder is its own.
        delete_staging(spark, run_staging, record.attempt, staging)
    if not record.reconciles():
        return record.with_(
            status=FAILED,
            error=(
                f"Counts do not reconcile: read {record.rows_read}, scored {record.rows_scored}, "
                f"quarantined {record.rows_quarantined}."
            ),
        )
    return record.with_(status=SUCCEEDED)


@dataclass(frozen=True)
class _Run:
    """What every step after reading needs."""

    spark: SparkSession
    deployment: Deployment
    state: _RunState
    progress: Progress
    model: ResolvedModel
    stamp: pipeline.RunStamp  # the run's constant lineage, added to the staged rows at commit
    stats_columns: str  # the predictions table's delta.dataSkippingStatsColumns, if created
    prediction_fit: Fit  # casts to the types an existing table stores
    quarantine_fit: Fit


@dataclass(frozen=True)
class _Completeness:
    """What the input's completeness checks after counting need, and the unreadable files."""

    failed: list[FailedFile]
    manifest: tuple[ExpectedFile, ...]
    names: dict[str, str]


def _stage_and_commit(
    run: _Run,
    validated: pipeline.Validated,
    staged_rows: DataFrame,
    staging: str,
    completeness: _Completeness,
) -> RunRecord:
    """The one pass over the input (validate and score into staging), then every count, check
    and commit from the staged rows."""
    spark, deployment, state, progress, model = (
        run.spark,
        run.deployment,
        run.state,
        run.progress,
        run.model,
    )
    failed, manifest, names = completeness.failed, completeness.manifest, completeness.names
    progress.stage(f"validating and scoring rows with {model.pinned_uri}")
    with progress.tracking(spark, "scoring"):
        _guard_scoring(
            model,
            deployment.rules,
            deployment.quarantine.redact,
            lambda: write_staging(staged_rows, staging),
        )
    staged = read_staging(spark, staging)
    summary = _StagedCounts.of(staged, validated)
    record = state.update(
        rows_read=summary.rows_read,
        quarantined_by_reason=summary.by_action["quarantine"],
        warnings_by_rule=summary.by_action["warn"],
        executors=summary.executors,
    )
    progress.stage(
        f"validated {summary.rows_read:,} rows: {summary.rows_scored:,} scored, "
        f"{summary.rows_invalid:,} to quarantine"
    )
    expect = deployment.input.expect
    rows_by_file: dict[str, int] = {}
    if any(f.rows is not None for f in manifest):
        # _source_file is a URI (a space is %20); the listed names are plain paths.
        rows_by_file = {names.get(unquote(k), k): n for k, n in summary.rows_by_file.items()}
    _require_complete(
        missing_after_counting(summary.rows_read, expect.min_rows, manifest, rows_by_file),
        scored=True,
    )
    if summary.by_action["fail"]:
        broken = ", ".join(f"{rule} ({n:,} rows)" for rule, n in summary.by_action["fail"].items())
        raise RuleFailedError(
            f"Rows broke rule(s) with action fail: {broken}; nothing was committed."
        )
    # Once for every commit below (each check is a read of the runs table, seconds in a cold
    # JVM), and before the first: a superseded attempt changes no table.
    require_ownership(spark, deployment.runs.path, record)
    state.committing = True
    failed_files = _commit_failed_files(spark, deployment, record, failed)
    try:
        return _commit_tables(run, validated, staged, summary)
    except LimitExceededError:
        raise  # an aborted run keeps its record of unreadable files, as its quarantine
    except BaseException:  # Ctrl-C and SIGTERM too: a stopped run changes no table either
        path = failed_files_path(deployment.quarantine.path)
        _take_back(run, path, "failed files", failed_files)
        raise


def _commit_tables(
    run: _Run, validated: pipeline.Validated, staged: DataFrame, summary: _StagedCounts
) -> RunRecord:
    """The quarantine and predictions commits (or the abort, past a limit); each of them is
    taken back if the other fails."""
    spark, deployment, state, progress, model = (
        run.spark,
        run.deployment,
        run.state,
        run.progress,
        run.model,
    )
    record = state.record
    if summary.rows_failed:
        reasons = {**record.quarantined_by_reason, C.RULE_MODEL_ERROR: summary.rows_failed}
        record = state.update(quarantined_by_reason=reasons)
        progress.stage(f"the model failed on {summary.rows_failed:,} rows: they go to quarantine")
    quarantined = conform(
        pipeline.quarantine(staged, validated.input_columns, run.stamp), run.quarantine_fit
    )
    limit_error = _limit_exceeded(
        deployment.limits, summary.rows_read, summary.rows_invalid + summary.rows_failed
    )
    if not limit_error and summary.rows_failed and not summary.rows_scored:
        # With or without limits: a run whose model failed on every row it was given is a
        # broken model (version), not a success with nothing to commit.
        limit_error = (
            f"The model failed on every row it was given ({summary.rows_failed:,}); "
            f"{LIMIT_ABORTED}."
        )
    if limit_error:
        _abort(run, quarantined, limit_error)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakescore-quarantine") as pool:
        # The two tables are independent and each rerun replaces its run's rows in both, so the
        # quarantine commit (small, mostly Delta log work on the driver) overlaps the predictions.
        # If either fails, the other one is reverted for this run id (_take_back).
        quarantine_commit = pool.submit(
            carry_job_tags(spark, _commit_quarantine),
            spark,
            deployment,
            record,
            quarantined,
            model,
            progress,
        )
        try:
            out = _commit_predictions(
                spark,
                deployment,
                record,
                conform(pipeline.predictions(staged, run.stamp), run.prediction_fit),
                model,
                run.stats_columns,
            )
        except BaseException:
            _take_back_pending(run, deployment.quarantine.path, "quarantine", quarantine_commit)
            raise
        try:
            progress.stage(_committed_stage(out, "predictions"))
            fault_point("after_predictions_commit")
            quarantined_commit = quarantine_commit.result()
        except BaseException:
            _take_back(run, deployment.output.path, "predictions", out)
            if not (quarantine_commit.done() and quarantine_commit.exception()):
                # Interrupted before or while waiting for it: it may commit yet.
                _take_back_pending(run, deployment.quarantine.path, "quarantine", quarantine_commit)
            raise
    return state.update(
        rows_scored=out.rows,
        output_version=out.recorded_version,
        rows_quarantined=quarantined_commit.rows,
        quarantine_version=quarantined_commit.recorded_version,
        finished_at=datetime.now(timezone.utc),
    )


def _take_back(run: _Run, path: str, table: str, commit: Commit | None) -> None:
    """A later step of the run failed: give `table`'s rows of this run id back the state they
    had before this attempt's `commit`, so a failed run changes neither table (as a failed
    check does) and the table an earlier attempt completed keeps its rows. Best effort: if this
    fails too, a rerun of the same run id replaces the rows anyway."""
    if commit is None:
        return
    record = run.state.record
    try:
        revert_run_rows(
            run.spark,
            path,
            C.RUN_ID,
            record.run_id,
            commit,
            {"lakescore_run_id": record.run_id, "table": table, "action": "revert"},
        )
    except Exception:
        _log.warning("could not revert run %s in %s", record.run_id, path, exc_info=True)
        return
    run.progress.stage(f"reverted this attempt's commit to the {table} table")


def _take_back_pending(run: _Run, path: str, table: str, commit: Future[Commit]) -> None:
    """Take back a commit running in another thread: cancelled if it has not started, else
    waited for (it may still succeed) and reverted."""
    commit.cancel()
    _take_back(run, path, table, _result_or_none(commit))


def _result_or_none(commit: Future[Commit]) -> Commit | None:
    """The commit, or None when it failed (its own error matters less than the caller's)."""
    try:
        return commit.result()
    except Exception:
        _log.warning("the quarantine commit failed too", exc_info=True)
        return None


def _commit_predictions(  # the caller has checked that this attempt still owns the run
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    predictions: DataFrame,
    model: ResolvedModel,
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
            "lakescore.deployment": deployment.name,
            "lakescore.version": __version__,
        },
        deployment.output.table,
    )
    return replace_run_rows(
        predictions,
        deployment.output.path,
        C.RUN_ID,
        record.run_id,
        _metadata(deployment, record, model, "predictions"),
    )


def _among(names: Collection[str], columns: Sequence[str]) -> list[str]:
    """The `columns` that `names` holds, matched case-insensitively (respell may have renamed)."""
    wanted = {name.lower() for name in names}
    return [c for c in columns if c.lower() in wanted]


def _checked(decided: Fit, table: str, path: str, model: ResolvedModel) -> Fit:
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


def _warn_of_empty_columns(
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


def _stats_columns(deployment: Deployment, model: ResolvedModel, schema: T.StructType) -> str:
    """The `delta.dataSkippingStatsColumns` of a new predictions table (output.stats_columns)."""
    types = {f.name: f.dataType for f in schema.fields}
    chosen = deployment.output.stats_columns
    if chosen is None:
        chosen = pipeline.default_stats_columns(model.outputs)
        chosen = tuple(c for c in chosen if isinstance(types[c], _STATS_TYPES))
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
    # Delta takes a name unquoted only if it is ASCII letters, digits and `_` (`\w` is wider).
    return ",".join(c if re.fullmatch(r"[A-Za-z0-9_]+", c) else f"`{c}`" for c in chosen)


@dataclass(frozen=True)
class _StagedCounts:
    """What the run record and the checks need, counted from the staged rows."""

    rows_read: int
    rows_scored: int
    rows_invalid: int  # failed validation
    rows_failed: int  # the model raised on them
    rows_by_file: dict[str, int]
    by_action: dict[str, dict[str, int]]
    executors: list[dict[str, Any]]

    @classmethod
    def of(cls, staged: DataFrame, validated: pipeline.Validated) -> _StagedCounts:
        parts = pipeline.staged_summary(staged).collect()
        failures = {
            (r["rule"], r["column"]): int(r["rows"])
            for r in pipeline.check_failures(staged).collect()
        }
        by_action: dict[str, dict[str, int]] = {"quarantine": {}, "warn": {}, "fail": {}}
        for check in validated.checks:
            rows = failures.get((check.rule, check.column), 0)
            if rows:
                by_action[check.action][check.reason] = rows
        rows_by_file: dict[str, int] = {}
        per_executor: dict[str, dict[str, Any]] = {}
        for part in parts:
            rows_by_file[part[C.SOURCE_FILE]] = (
                rows_by_file.get(part[C.SOURCE_FILE], 0) + part["rows"]
            )
            executor = per_executor.setdefault(
                str(part[C.EXECUTOR]),
                {"executor": part[C.EXECUTOR], "tasks": set(), "rows": 0, "rows_failed": 0},
            )
            executor["tasks"].add(part[C.TASK])
            executor["rows"] += int(part["scored"])
            executor["rows_failed"] += int(part["score_failed"])
        executors = [{**e, "tasks": len(e["tasks"])} for _, e in sorted(per_executor.items())]
        rows_read = sum(int(p["rows"]) for p in parts)
        rows_scored = sum(int(p["scored"]) for p in parts)
        rows_failed = sum(int(p["score_failed"]) for p in parts)
        return cls(
            rows_read=rows_read,
            rows_scored=rows_scored,
            rows_invalid=rows_read - rows_scored - rows_failed,
            rows_failed=rows_failed,
            rows_by_file=rows_by_file,
            by_action=by_action,
            executors=executors,
        )


def _abort(run: _Run, quarantined: DataFrame, reason: str) -> None:
    """Too many bad rows: commit the quarantine (so the operator sees why), no predictions.
    The caller has checked that this attempt still owns the run.

    The quarantine goes first: if it cannot be committed, the run fails with both tables as
    they were; if an earlier attempt's predictions then cannot be removed, the quarantine
    commit is reverted.
    """
    spark, deployment, record = run.spark, run.deployment, run.state.record
    commit = _commit_quarantine(spark, deployment, record, quarantined, run.model, run.progress)
    try:
        removed = _remove_run_predictions(spark, deployment, record)
    except BaseException:  # Ctrl-C and SIGTERM too
        _take_back(run, deployment.quarantine.path, "quarantine", commit)
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


@contextlib.contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a session setting for the pass only: a notebook's session stays the user's.

    Runs in threads of one session share its settings: the first to start saves the user's
    value and the last to finish puts it back (each sets its own value as it starts, so two
    concurrent passes with different values both get the later one's).
    """
    slot = (id(spark), key)
    with _session_conf_lock:
        users, before = _session_conf_users.get(slot, (0, spark.conf.get(key, None)))
        spark.conf.set(key, value)  # first: if it fails, nothing is left to put back
        _session_conf_users[slot] = (users + 1, before)
    try:
        yield
    finally:
        with _session_conf_lock:
            users, before = _session_conf_users.pop(slot)
            if users > 1:
                _session_conf_users[slot] = (users - 1, before)
            elif before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


_session_conf_lock = threading.Lock()
# (session, setting) -> (runs inside _session_conf, the value before the first of them)
_session_conf_users: dict[tuple[int, str], tuple[int, str | None]] = {}


def _staged(
    spark: SparkSession,
    deployment: Deployment,
    validated: pipeline.Validated,
    inputs: Any,
    carried: list[str],
    model: ResolvedModel,
    archive: str,
    table_version: int | None,
) -> DataFrame:
    udf = scoring_udf(
        archive,
        inputs,
        model.outputs,
        model.describe(),
        pipeline.VALID,
        withhold_messages=any(c.name in deployment.quarantine.redact for c in inputs),
    )
    return pipeline.staged(
        validated,
        inputs,
        model.outputs,
        udf,
        carried,
        table_version is not None,
        deployment.quarantine.redact,
    )


def _commit_quarantine(  # the caller has checked that this attempt still owns the run
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    quarantined: DataFrame,
    model: ResolvedModel,
    progress: Progress,
) -> Commit:
    ensure_delta_table(
        spark,
        deployment.quarantine.path,
        quarantined.schema,
        C.COMMENTS,
        {"lakescore.deployment": deployment.name, "lakescore.version": __version__},
        deployment.quarantine.table,
    )
    commit = replace_run_rows(
        quarantined,
        deployment.quarantine.path,
        C.RUN_ID,
        record.run_id,
        _metadata(deployment, record, model, "quarantine"),
    )
    progress.stage(_committed_stage(commit, "quarantined rows"))
    return commit


def _committed_stage(commit: Commit, rows: str) -> str:
    if not commit.committed:
        return f"no {rows} to commit"
    return f"committed {commit.rows:,} {rows} (version {commit.version})"


def _manifest(spark: SparkSession, deployment: Deployment) -> tuple[ExpectedFile, ...] | None:
    """The manifest's files; None when the deployment expects one that does not exist yet (the
    producer writes it last, so the input is incomplete, as with a missing marker)."""
    path = deployment.input.expect.manifest
    if path is None:
        return ()
    text = read_text(spark, path)
    if text is None:
        return None
    try:
        return parse_manifest(text, path)
    except ValueError as exc:
        raise DeploymentError(str(exc)) from exc


def _require_listed_complete(
    spark: SparkSession, deployment: Deployment, files: Sequence[str], failed: Sequence[FailedFile]
) -> tuple[tuple[ExpectedFile, ...], dict[str, str]]:
    """Stop the run before scoring when the listing alone shows the input incomplete
    (input.expect); return the manifest and the readable files' relative names."""
    expect = deployment.input.expect
    manifest = _manifest(spark, deployment)
    names = relative_names(spark, deployment.input.path, files)
    marker = f"{deployment.input.path.rstrip('/')}/{expect.marker}" if expect.marker else None
    unreadable = relative_names(spark, deployment.input.path, [f.path for f in failed])
    _require_complete(
        missing_before_reading(
            sorted(names.values()),
            expect.min_files,
            path_exists(spark, marker) if marker else None,
            expect.marker,
            manifest,
            sorted(unreadable.values()),
            expect.max_unreadable_files,
            expect.manifest,
        )
    )
    return manifest or (), names


def _require_complete(problems: list[str], scored: bool = False) -> None:
    """Stop the run as incomplete; `scored`: after the scoring pass, which counted the rows."""
    if problems:
        raise IncompleteInputError(
            "Input is incomplete: "
            + "; ".join(problems)
            + (". Nothing was committed." if scored else ". Nothing was scored or committed.")
        )


def _commit_failed_files(
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
    table = f"{deployment.quarantine.table}_failed_files" if deployment.quarantine.table else None
    ensure_delta_table(
        spark,
        path,
        FAILED_FILES_SCHEMA,
        FAILED_FILES_COMMENTS,
        {"lakescore.deployment": deployment.name, "lakescore.version": __version__},
        table,
    )
    return replace_run_rows(
        frame,
        path,
        C.RUN_ID,
        record.run_id,
        {"lakescore_run_id": record.run_id, "deployment": deployment.name, "table": "failed_files"},
    )


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


# How an abort by a limit ends its error: in previous_attempts, it says the attempt committed.
LIMIT_ABORTED = "no predictions were committed, only the quarantine"
# And how a stop during the commits says that its rows may be in the tables.
STOPPED_COMMITTING = "it was committing, and the tables may hold rows it committed"


def _limit_exceeded(limits: Limits, rows_read: int, rows_invalid: int) -> str | None:
    if limits.max_error_rows is not None and rows_invalid > limits.max_error_rows:
        return (
            f"{rows_invalid:,} rows were quarantined (by validation or the model), more than "
            "limits.max_error_rows "
            f"({limits.max_error_rows:,}); {LIMIT_ABORTED}."
        )
    if limits.max_error_fraction is not None and rows_read:
        fraction = rows_invalid / rows_read
        if fraction > limits.max_error_fraction:
            return (
                f"{_percent(fraction)} of rows were quarantined ({rows_invalid:,} of "
                f"{rows_read:,}), more than limits.max_error_fraction "
                f"({limits.max_error_fraction:g}, that is {_percent(limits.max_error_fraction)})"
                f"; {LIMIT_ABORTED}."
            )
    return None


def _percent(fraction: float) -> str:
    """Three significant digits, without an exponent, so a small limit (0.0001) does not read
    as 0.0% (nor as 1e-02%)."""
    return np.format_float_positional(fraction * 100, precision=3, fractional=False, trim="-") + "%"


def _check_rules_parse(frame: DataFrame, deployment: Deployment) -> None:
    """Refuse, before the pass and naming the rule, what is not a check of one row: an
    expression Spark cannot analyse, one that is not a boolean, an aggregate over the whole input
    (`avg(n) > 0`; a window, `n > avg(n) over ()`, is a row check), and a non-deterministic one
    (`rand() < 0.5`), whose verdict would differ each time the row is looked at: rows would be
    quarantined without a reason."""
    for rule in deployment.rules:
        where = f"Rule {rule.name} ({rule.expr})"
        try:
            checked = frame.select(F.expr(rule.expr).alias("rule"))
            data_type = checked.schema["rule"].dataType
            plan = checked._jdf.queryExecution().analyzed()
        except PySparkException as exc:
            raise DeploymentError(
                f"{where} is not a valid Spark SQL boolean expression over the input: "
                f"{spark_error_message(exc)}"
            ) from exc
        if not isinstance(data_type, T.BooleanType | T.NullType):
            raise DeploymentError(
                f"{where} gives {data_type.simpleString()}, not true or false: write a "
                "comparison (for example `flag <> 0` or `flag = 'Y'`)."
            )
        if plan.getClass().getSimpleName() == "Aggregate":
            raise DeploymentError(
                f"{where} aggregates the whole input instead of checking one row: use a window "
                "(for example `n > avg(n) OVER ()`)."
            )
        if not plan.deterministic():
            raise DeploymentError(
                f"{where} is not deterministic (rand(), uuid() and the like): a row's verdict "
                "would change each time it is looked at."
            )


def _guard_scoring(
    model: ResolvedModel, rules: Sequence[Rule], redact: Sequence[str], write: Callable[[], _T]
) -> _T:
    """Turn a model failure inside the UDF into one sentence naming the model version, and a
    rule that raised on a row into one naming the rule. Spark's message quotes the value the
    rule failed on, so it is withheld when the rule reads a `quarantine.redact` column."""
    try:
        return write()
    except (Py4JJavaError, PySparkException) as exc:
        text = str(exc)
        if "ScoringError" in text or "PythonException" in text or "PYTHON_" in text:
            message = python_error_message(text)
            own = message.removeprefix(f"{ScoringError.__name__}: ")  # names the model itself
            raise ScoringError(
                own
                if own != message
                else f"Model {model.describe()} failed while scoring: {message}"
            ) from exc
        rule = _rule_that_raised(exc, rules)
        if rule is not None:
            detail = spark_error_message(exc).rstrip(". ")
            if any(name.lower() in rule.expr.lower() for name in redact):
                condition = re.match(r"\[[A-Z0-9_.]+\]", detail)
                detail = (condition.group(0) if condition else "an error") + (
                    " (message withheld: the rule reads a quarantine.redact column)"
                )
            raise DeploymentError(
                f"Rule {rule.name} ({rule.expr}) raised an error on a row instead of returning "
                f"true or false: {detail}. Write it with try_divide, try_cast and the like, so "
                "that such a row breaks the rule (null) and is quarantined."
            ) from exc
        raise


def _rule_that_raised(exc: BaseException, rules: Sequence[Rule]) -> Rule | None:
    """The rule whose SQL the error points at (Spark's query context), if any."""
    contexts = exc.getQueryContext() if isinstance(exc, PySparkException) else []
    fragments = [
        c.fragment() for c in contexts if c.contextType() == QueryContextType.SQL and c.fragment()
    ]
    return next((r for r in rules for f in fragments if f in r.expr), None)


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


def _failed(record: RunRecord, exc: LakescoreError, status: str) -> RunRecord:
    """The record of an attempt that failed or aborted. A failed attempt changes neither table,
    so rows an earlier attempt of the run id committed are still there: the error says so,
    since this record replaces that attempt's (which stays in `previous_attempts`)."""
    error = scrub(str(exc))
    attempts = list(record.previous_attempts or [])
    finished = [i for i, a in enumerate(attempts) if _committed(a)]
    since = finished[-1] + 1 if finished else 0
    interrupted = [a for a in attempts[since:] if _may_have_committed(a)]
    if not isinstance(exc, LimitExceededError):
        if finished:
            kept = attempts[finished[-1]]
            error += (
                f" The tables still hold the rows that attempt {kept.get('attempt')} of run "
                f"{record.run_id} committed (it {kept.get('status')} at "
                f"{kept.get('finished_at')}{_counts(kept)}; its record is in previous_attempts)."
            )
        if interrupted:
            error += (
                (" They may also hold" if finished else " The tables may still hold")
                + f" rows that attempt {interrupted[-1].get('attempt')} of run {record.run_id} "
                "committed before it was interrupted; a successful rerun of this run id "
                "replaces them."
            )
    return record.with_(status=status, error=error, finished_at=datetime.now(timezone.utc))


def _committed(attempt: dict[str, Any]) -> bool:
    """Whether an earlier attempt's rows are in the tables. An attempt aborted by a limit
    committed its quarantine (and took back earlier predictions); one aborted on an incomplete
    input committed nothing. Records written before attempts kept their Delta versions tell
    it by their status and error only."""
    if attempt.get("output_version") is not None or attempt.get("quarantine_version") is not None:
        return True
    status, error = attempt.get("status"), attempt.get("error") or ""
    return status == SUCCEEDED or (status == ABORTED and LIMIT_ABORTED in error)


def _may_have_committed(attempt: dict[str, Any]) -> bool:
    """An attempt killed, or stopped during its commits, may have left rows behind."""
    status, error = attempt.get("status"), attempt.get("error") or ""
    return status == INTERRUPTED or (status == FAILED and STOPPED_COMMITTING in error)


def _counts(attempt: dict[str, Any]) -> str:
    """`: 590 predictions, 10 quarantined rows`, as far as the attempt's record has them."""
    parts = [
        f"{attempt[name]:,} {label}"
        for name, label in (
            ("rows_scored", "predictions"),
            ("rows_quarantined", "quarantined rows"),
        )
        if attempt.get(name) is not None
    ]
    return ": " + ", ".join(parts) if parts else ""


def _finish(
    spark: SparkSession, deployment: Deployment, record: RunRecord, progress: Progress
) -> None:
    fault_point("before_run_record")
    require_ownership(spark, deployment.runs.path, record)
    if record.finished_at is None:
        record = record.with_(finished_at=datetime.now(timezone.utc))
    write_run(spark, deployment.runs.path, record, deployment.runs.table)
    progress.stage(f"run {record.run_id} {record.status}")
