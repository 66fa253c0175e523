"""One scoring run end to end: read → validate → score → split → commit → record.

This module runs the steps in order and decides how a run ends. The steps are elsewhere: the
DataFrame logic in pipeline.py (pure), the counts in counts.py, the commits in commits.py, what a
failed attempt's record says in attempts.py, and the reads and writes in io.py and runs.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import unquote

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from lakescore import pipeline
from lakescore.attempts import STOPPED_COMMITTING, TOOK_BACK_COMMITS, ended_record
from lakescore.catalog import require_input_table, resolve_tables
from lakescore.commits import (
    Commits,
    commit_failed_files,
    commit_tables,
    failed_files_metadata,
)
from lakescore.completeness import (
    ExpectedFile,
    missing_after_counting,
    missing_before_reading,
    parse_manifest,
)
from lakescore.config import Deployment, check_locations
from lakescore.counts import StagedCounts
from lakescore.errors import (
    AttemptSupersededError,
    DeploymentError,
    IncompleteInputError,
    InputError,
    LakescoreError,
    LimitExceededError,
    NoReadableInputError,
    RuleFailedError,
    UsageError,
    interruption,
    spark_error_message,
    with_cause,
)
from lakescore.faults import fault_point
from lakescore.interrupts import on_worker_thread, stoppable
from lakescore.io import (
    FailedFile,
    attempt_staging_path,
    delete_staging,
    failed_file_in,
    failed_files_path,
    failed_records,
    fails_read_alone,
    names_read_as,
    path_exists,
    read_input,
    read_staging,
    read_text,
    relative_names,
    staging_folder_name,
    staging_path,
    table_schema,
    write_staging,
)
from lakescore.model import InputColumn, ResolvedModel, resolve_model
from lakescore.model_environment import environment_mismatches
from lakescore.model_shipping import ship_model
from lakescore.progress import SILENT, Progress
from lakescore.redaction import scrub, scrub_causes
from lakescore.run_state import RunContext, RunState
from lakescore.runs import (
    ABORTED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RunRecord,
    get_run,
    next_attempt,
    require_ownership,
    write_run,
)
from lakescore.scoring import scoring_udf
from lakescore.scoring_failures import guard_scoring
from lakescore.session import (
    EVERY_FILE_READ,
    STANDARD_TIMESTAMPS,
    require_classic,
    require_delta,
    session_confs,
)
from lakescore.spark_logs import query_context_logs_quieted
from lakescore.table_fit import (
    among,
    fields_among,
    fit,
    left_null,
    refuse_clashes,
    stats_columns_setting,
    warn_of_empty_columns,
)
from lakescore.validate import TIME_TYPES, check_rule_syntax, check_rules

_log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class RunResult:
    record: RunRecord
    deployment: Deployment

    @property
    def succeeded(self) -> bool:
        return self.record.status == SUCCEEDED


def new_run_id() -> str:
    """A sortable, unique run id made on the driver."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def check_run_id(run_id: str) -> str:
    """The run id as given, or UsageError. An empty one is refused, not replaced by a new id: a
    scheduler passing `--run-id "$RUN_ID"` with the variable unset would get retries that no
    longer replace each other's rows."""
    if not run_id.strip():
        raise UsageError(
            "Run id is empty: give one, or none at all for a new id. An unset variable "
            '(--run-id "$RUN_ID") is not taken as a new id: a scheduler\'s retries would no '
            "longer replace each other's rows."
        )
    if not _RUN_ID.fullmatch(run_id):  # `$` of match() passes a final newline
        raise UsageError(
            f"Run id {run_id!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '.', ':' and '-' (at most 128)."
        )
    if len(staging_folder_name(run_id)) > 255:
        raise UsageError(
            f"Run id {run_id!r} names a folder too long for a file system: each ':' in it is "
            "written %3A in its staging folder's name, which may hold 255 characters."
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
    require_delta(spark)  # a session built by hand: one sentence, not the first Delta error
    run_id = new_run_id() if run_id is None else check_run_id(run_id)
    check_rule_syntax(spark, deployment.rules)  # before resolve_tables creates a schema
    deployment = resolve_tables(spark, deployment)
    check_locations(deployment)
    started = datetime.now(UTC)
    record = RunRecord(
        run_id,
        deployment.name,
        RUNNING,
        started,
        # A catalog input by its name: its location says nothing of a table dropped and made
        # again there, and it has none once dropped.
        scrub(deployment.input.table or deployment.input.path),
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
        state = RunState(
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
            _finish(spark, deployment, record, progress, waits=_FINAL_RECORD_WAITS)
        except (Py4JJavaError, PySparkException) as exc:
            versions = ", ".join(
                f"{table} version {version}"
                for table, version in (
                    ("predictions", record.output_version),
                    ("quarantine", record.quarantine_version),
                )
                if version is not None
            )
            unrecorded = LakescoreError(
                f"Run {run_id} committed its rows ({versions or 'no rows to commit'}) "
                f"but could not record itself in the runs table at "
                f"{deployment.runs.path}: {spark_error_message(exc)}"
            )
            _raise_with_record(unrecorded, None, exc)  # scrubbed, its Spark error too
    if record.status != SUCCEEDED:  # counts that do not reconcile: recorded as failed
        _raise_with_record(LakescoreError(record.error or f"Run {run_id} failed."), record, None)
    return RunResult(record, deployment)


def _end_failed_run(
    spark: SparkSession,
    deployment: Deployment,
    state: RunState,
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
        # A failed run changes no table, but for these; an abort keeps its quarantine commit.
        left = "" if isinstance(error, LimitExceededError) else _left_committed(state)
        if left:
            error.args = (
                f"{str(error).rstrip('.')}; {STOPPED_COMMITTING}: {left} (a rerun of this run "
                "id replaces those rows).",
            )
        aborted = isinstance(error, LimitExceededError | IncompleteInputError)
        failed = ended_record(state.record, error, ABORTED if aborted else FAILED)
        state.wait_quietly()
        _drop_older_staging(spark, deployment, failed)
        _record_failure(spark, deployment, failed, progress, error, _may_hold_rows(state))
        _raise_with_record(error, failed, exc)
    # Stopped by a signal (Py4J may surface it as an error of the connection it closed), a
    # cancelled notebook cell, or a bug: record the end anyway, or the runs table would say
    # `running` for ever.
    stopped = _stopped(state, exc)
    failed = ended_record(state.record, LakescoreError(stopped), FAILED)
    unrecorded = _record_quietly(spark, deployment, state, failed, progress)
    recorded = failed if unrecorded is None else None
    if state.stop.stopped:
        # What the runs table now says (the run id, rows an earlier attempt left), or why not.
        said = str(failed.error) if unrecorded is None else f"{stopped} {unrecorded}"
        _raise_with_record(state.stop.exception(said), recorded, exc)
    _raise_with_record(exc, recorded, None)


def _left_committed(state: RunState) -> str:
    """Why commits of a failed run may remain: a take-back failed, a commit whose call failed
    could not be looked for in its table's history, a newer attempt claimed the run (whose
    own commits a take-back would remove), or the run ended past its commits without a
    take-back (an abort commits its quarantine; an error after both commits landed)."""
    said = []
    if state.unreverted:
        said.append(f"taking back its commit to the {_tables(state.unreverted)} failed too")
    if state.unchecked:
        said.append(
            f"whether its commit to the {_tables(state.unchecked)} landed could not be seen"
        )
    if state.left_to_newer:
        said.append(
            f"its commit to the {_tables(state.left_to_newer)} was left for the newer attempt "
            "that claimed the run to replace"
        )
    if state.committing and not state.took_back and not said:
        said.append("it ended after committing, without taking its commits back")
    return "; ".join(said)


def _may_hold_rows(state: RunState) -> bool:
    """Whether the tables may hold rows this attempt committed (see _left_committed)."""
    return bool(_left_committed(state))


def _tables(names: Sequence[str]) -> str:
    return " and ".join(names) + (" tables" if len(names) > 1 else " table")


def _raise_with_record(
    error: BaseException, record: RunRecord | None, exc: BaseException | None
) -> NoReturn:
    """Raise `error` carrying the run's record as written (None if it could not be), without
    the credentials its text may quote (a notebook shows it and keeps it in its output; the
    command line scrubs what it prints itself)."""
    with contextlib.suppress(AttributeError):  # an exception type that takes no attributes
        error.run_record = asdict(record) if record else None  # type: ignore[attr-defined]
    if exc is not None and exc is not error:
        error.__cause__ = exc  # as `raise error from exc`, and scrubbed below with it
        error.__suppress_context__ = True
    if isinstance(error, LakescoreError | KeyboardInterrupt):
        _scrub_message(error)
        scrub_causes(error)
    raise error


def _scrub_message(error: BaseException) -> None:
    """Mask credentials in a message of lakescore's own (one text argument)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        error.args = (scrub(error.args[0]),)


def _stopped(state: RunState, exc: BaseException) -> str:
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
    left = _left_committed(state)
    if left:
        said += f"; {STOPPED_COMMITTING}: {left} (a rerun of this run id replaces those rows)"
    elif state.committing:  # and Commits.take_back ran to its end (else `left` says why not)
        said += f"; {TOOK_BACK_COMMITS}"
    return said + "."


def _record_quietly(
    spark: SparkSession,
    deployment: Deployment,
    state: RunState,
    record: RunRecord,
    progress: Progress,
) -> str | None:
    """Best effort, on the way out of a stopped run: the stop is what the caller must see,
    even when the record cannot be written (a signal to the whole process group stops
    Spark's JVM too). None once the record is written, else what the runs table shows."""
    try:
        state.wait_quietly()
        _drop_older_staging(spark, deployment, record)
        _finish(spark, deployment, record, progress, _may_hold_rows(state))
    except AttemptSupersededError as superseded:  # the newer attempt's record is the run's
        _log.warning("run %s does not record how this attempt ended: %s", record.run_id, superseded)
        return str(superseded)
    except BaseException:  # a second Ctrl-C where lakescore could not take the signals over
        _log.warning("run %s could not record how it ended", record.run_id, exc_info=True)
        return (
            "The run could not record this, so the runs table still shows what it held before "
            "(this run's `running` record, or an earlier attempt's)."
        )
    return None


def _drop_older_staging(spark: SparkSession, deployment: Deployment, record: RunRecord) -> None:
    """A failed rerun still removes the staging a killed earlier attempt of its run id left
    (a run that commits does so after its commits). Called once this attempt's record is in
    the runs table, so no older attempt can still pass the ownership check and commit."""
    if record.attempt == 1:
        return
    run_staging, own = _staging_folders(deployment, record)
    _delete_own_staging(spark, run_staging, record, own)  # the run's own error matters more


def _delete_own_staging(
    spark: SparkSession, run_staging: str, record: RunRecord, staging: str
) -> None:
    """Clean-up only: a storage error here (a delete refused, a folder another attempt removed
    meanwhile) must not turn a run that committed, or aborted, into a failed one."""
    try:
        delete_staging(spark, run_staging, record.attempt, staging)
    except Exception:
        _log.warning(
            "could not remove the staging folder %s of run %s; delete it by hand",
            scrub(staging),
            record.run_id,
            exc_info=True,
        )


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
    left_rows: bool = False,
) -> None:
    """Record a failed run; when the runs table cannot take the record either (the usual reason
    the run failed so early), raise the run's error with that said, not the storage traceback.
    The error itself is reworded, not rebuilt: what it carries (the files that could not be
    read, say) stays with it."""
    try:
        _finish(spark, deployment, record, progress, left_rows)
    except AttemptSupersededError as superseded:  # the newer attempt's record is the run's
        error.args = (f"{str(error).rstrip('. ')}. {superseded}",)
        _scrub_message(error)
        raise error from (error.__cause__ or superseded)
    except (Py4JJavaError, PySparkException) as exc:
        reason = spark_error_message(exc)
        where = f"the runs table at {scrub(deployment.runs.path)}"
        said = str(error).rstrip(". ") + "."
        error.args = (
            f"{said} Its failure could not be recorded in {where} either."
            if reason in str(error)
            else f"{said} The run could not be recorded in {where} either: {reason}",
        )
        _scrub_message(error)
        _log.debug("run %s could not record its failure", record.run_id, exc_info=exc)
        # The run's own cause stays the one shown; without one, the record's failure (and,
        # before it, whatever the run failed on) is.
        raise error from (error.__cause__ or exc)


def _score(
    spark: SparkSession,
    deployment: Deployment,
    state: RunState,
    progress: Progress,
    workdir: str,
) -> RunRecord:
    """Resolve the model into `workdir` (removed after the run), then score the input."""
    require_input_table(deployment)
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
    mismatches = environment_mismatches(model.local_path)
    if mismatches:
        _log.warning(
            "model %s was logged with packages this environment does not have; it may load "
            "differently or fail (on executors too, whose environment is taken to be this "
            "one):\n - %s\nInstall them (mlflow.pyfunc.get_model_dependencies gives the "
            "model's requirements) or log the model again from this environment.",
            model.describe(),
            "\n - ".join(mismatches),
        )
    archive = ship_model(spark, model.local_path)
    failed_later: list[FailedFile] = []
    read_again: set[str] = set()  # files that failed the pass, then read on their own
    while True:
        try:
            return _score_input(spark, deployment, state, progress, model, archive, failed_later)
        except (Py4JJavaError, PySparkException) as exc:
            text = str(exc.java_exception) if isinstance(exc, Py4JJavaError) else str(exc)
            bad = failed_file_in(text, state.files)
            # Once committing, an error naming a file is a table's (a CHECK constraint on
            # `_source_file` quotes it), not the file's: the file is read by then.
            if bad is None or bad in {f.path for f in failed_later} or state.committing:
                raise
            if deployment.input.format == "delta":
                # A Delta version is read whole or not at all: no file can be left out.
                raise InputError(
                    f"Data file {bad} of Delta table {deployment.input.path} could not be read "
                    f"({with_cause(exc)}); a VACUUM or a damaged table removes files "
                    "that a version still needs. Nothing was committed."
                ) from exc
            if bad not in read_again and not fails_read_alone(spark, bad):
                # Storage failed once (a reset connection outlasting Spark's task retries):
                # the pass is redone with it, once; a second failure leaves it out.
                read_again.add(bad)
                progress.stage(f"{bad} failed while being read, then read; reading the input again")
                continue
            failed_later.append(FailedFile(bad, with_cause(exc)))
            progress.stage(f"{bad} failed while being read; reading the input again without it")


def _score_input(
    spark: SparkSession,
    deployment: Deployment,
    state: RunState,
    progress: Progress,
    model: ResolvedModel,
    archive: str,
    failed_later: list[FailedFile],
) -> RunRecord:
    """One pass from reading to the last commit; idempotent, so it can be redone without a file
    that failed halfway (its rows are then in no table at all)."""
    # Before listing: a producer writes its marker or manifest last, so every file it wrote
    # is in a listing that starts after either was seen (one seen after listing could have
    # come with files the listing missed).
    arrival = _arrival(spark, deployment)
    try:
        data = read_input(spark, deployment.input, exclude=[f.path for f in failed_later])
    except NoReadableInputError as exc:
        unread = [*(FailedFile(**f) for f in exc.files_failed), *failed_later]
        state.update(files_read=0, files_failed=failed_records(unread))
        _require_listed_complete(spark, deployment, arrival, [], unread)  # input.expect first
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
    manifest, names = _require_listed_complete(spark, deployment, arrival, data.files, failed)
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
    check_rules(pipeline.typed_inputs(data.frame, checked), deployment.rules)
    validated = pipeline.validate(
        data.frame, checked, deployment.rules, deployment.quarantine.redact
    )
    stamp = pipeline.RunStamp(record.run_id, datetime.now(UTC), model)
    state.wait_until_recorded()
    fault_point("before_scoring")
    run_staging, staging = _staging_folders(deployment, record)
    staged_rows = _staged(
        deployment, validated, inputs, carried, model, archive, data.table_version
    )
    # Both checked before the pass, so neither a wrong output.stats_columns (it applies when
    # lakescore creates the table) nor a column an existing table stores as another type costs
    # a pass.
    predictions_schema = pipeline.predictions(staged_rows, stamp).schema
    output_schema = table_schema(spark, deployment.output.path)
    warn_of_empty_columns(left_null(predictions_schema, output_schema), deployment, model)
    stats_columns = (
        stats_columns_setting(deployment, model, predictions_schema)
        if output_schema is None
        else ""
    )
    quarantine_schema = pipeline.quarantine(staged_rows, validated.input_columns, stamp).schema
    run = RunContext(
        spark,
        deployment,
        state,
        progress,
        model,
        stamp,
        stats_columns,
        # Only input columns can be null in every file; a model output of the same name cannot.
        refuse_clashes(
            fit(
                predictions_schema,
                output_schema,
                among(data.all_null, carried),
                fields_among(data.null_fields, carried),
            ),
            "predictions",
            deployment.output.path,
            model,
        ),
        refuse_clashes(
            fit(
                quarantine_schema,
                table_schema(spark, deployment.quarantine.path),
                among(data.all_null, validated.input_columns),
                fields_among(data.null_fields, validated.input_columns),
            ),
            "quarantine",
            deployment.quarantine.path,
            model,
        ),
    )
    batch = ("spark.sql.execution.arrow.maxRecordsPerBatch", str(deployment.scoring.batch_size))
    try:
        with session_confs(spark, (batch, STANDARD_TIMESTAMPS, *EVERY_FILE_READ)):
            record = _stage_and_commit(
                run, validated, staged_rows, staging, _Completeness(failed, manifest, names)
            )
    finally:
        # Staging holds the rows to quarantine as read: leave none behind, nor anything that
        # killed earlier attempts of this run left; a newer attempt's folder is its own.
        _delete_own_staging(spark, run_staging, record, staging)
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
class _Completeness:
    """What the input's completeness checks after counting need, and the unreadable files."""

    failed: list[FailedFile]
    manifest: tuple[ExpectedFile, ...]
    names: dict[str, str]


def _stage_and_commit(
    run: RunContext,
    validated: pipeline.Validated,
    staged_rows: DataFrame,
    staging: str,
    completeness: _Completeness,
) -> RunRecord:
    """The one pass over the input (validate and score into staging), then every count, check
    and commit from the staged rows."""
    failed, manifest, names = completeness.failed, completeness.manifest, completeness.names
    run.progress.stage(f"validating and scoring rows with {run.model.pinned_uri}")
    with run.progress.tracking(run.spark, "scoring"):
        guard_scoring(
            run.model,
            run.deployment.rules,
            run.deployment.quarantine.redact,
            lambda: on_worker_thread(
                run.state.stop,
                functools.partial(write_staging, staged_rows, staging),
                "lakescore-staging",
            ),
        )
    staged = read_staging(run.spark, staging)
    summary = StagedCounts.of(staged, validated)
    record = run.state.update(
        rows_read=summary.rows_read,
        quarantined_by_reason=summary.by_action["quarantine"],
        warnings_by_rule=summary.by_action["warn"],
        executors=summary.executors,
    )
    run.progress.stage(
        f"validated {summary.rows_read:,} rows: {summary.rows_scored:,} scored, "
        f"{summary.rows_invalid:,} to quarantine"
    )
    expect = run.deployment.input.expect
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
    require_ownership(run.spark, run.deployment.runs.path, record)
    with Commits(run) as commits:
        try:
            run.state.committing = True  # once a take-back follows any error
            commits.start(
                "failed files",
                failed_files_path(run.deployment.quarantine.path),
                failed_files_metadata(run.deployment, record),
                functools.partial(commit_failed_files, run.spark, run.deployment, record, failed),
            ).result()
            committed = commit_tables(run, validated, staged, summary)
            # Committed: a signal during the clean-up and the record changes nothing (the
            # run would say it failed while its rows stayed).
            run.state.stop.ending()
            return committed
        except LimitExceededError:
            run.state.stop.ending()  # the abort committed its quarantine: the same
            raise  # an aborted run keeps its record of unreadable files, as its quarantine
        except BaseException as error:  # Ctrl-C and SIGTERM too: a stopped run changes no table
            commits.take_back(error)
            raise


def _staged(
    deployment: Deployment,
    validated: pipeline.Validated,
    inputs: Sequence[InputColumn],
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


def _manifest(spark: SparkSession, deployment: Deployment) -> tuple[ExpectedFile, ...] | None:
    """The manifest's files; None when the deployment expects one that is not written yet (the
    producer writes it last, so the input is incomplete, as with a missing marker): absent, or
    still empty (created before its text is written)."""
    path = deployment.input.expect.manifest
    if path is None:
        return ()
    text = read_text(spark, path)
    if text is None or not text.strip():
        return None
    try:
        return parse_manifest(text, path)
    except ValueError as exc:
        raise DeploymentError(str(exc)) from exc


@dataclass(frozen=True)
class _Arrival:
    """What the producer writes last, as found before the input was listed."""

    marker_found: bool | None  # None: the deployment expects no marker
    manifest: tuple[ExpectedFile, ...] | None  # None: expected, not written yet


def _arrival(spark: SparkSession, deployment: Deployment) -> _Arrival:
    marker = deployment.input.expect.marker
    folder = deployment.input.path.rstrip("/")
    return _Arrival(
        path_exists(spark, f"{folder}/{marker}") if marker else None,
        _manifest(spark, deployment),
    )


def _require_listed_complete(
    spark: SparkSession,
    deployment: Deployment,
    arrival: _Arrival,
    files: Sequence[str],
    failed: Sequence[FailedFile],
) -> tuple[tuple[ExpectedFile, ...], dict[str, str]]:
    """Stop the run before scoring when the listing alone shows the input incomplete
    (input.expect); return the manifest and the readable files' relative names."""
    expect = deployment.input.expect
    names = relative_names(spark, deployment.input.path, files)
    manifest = _as_read(spark, deployment.input.path, arrival.manifest, names.values())
    unreadable = relative_names(spark, deployment.input.path, [f.path for f in failed])
    _require_complete(
        missing_before_reading(
            sorted(names.values()),
            expect.min_files,
            arrival.marker_found,
            expect.marker,
            manifest,
            sorted(unreadable.values()),
            expect.max_unreadable_files,
            expect.manifest,
        )
    )
    return manifest or (), names


def _as_read(
    spark: SparkSession,
    folder: str,
    manifest: tuple[ExpectedFile, ...] | None,
    read: Collection[str],
) -> tuple[ExpectedFile, ...] | None:
    """The manifest with each file it names through a local link renamed as it is read (and
    as `_source_file` names it), so its presence and row count are checked."""
    if not manifest:
        return manifest
    renamed = names_read_as(spark, folder, [f.name for f in manifest], set(read))
    return tuple(replace(f, name=renamed.get(f.name, f.name)) for f in manifest)


def _require_complete(problems: list[str], scored: bool = False) -> None:
    """Stop the run as incomplete; `scored`: after the scoring pass, which counted the rows."""
    if problems:
        raise IncompleteInputError(
            "Input is incomplete: "
            + "; ".join(problems)
            + (". Nothing was committed." if scored else ". Nothing was scored or committed.")
        )


# Seconds before each retry of a finished run's record.
_FINAL_RECORD_WAITS = (2.0, 8.0)


def _finish(
    spark: SparkSession,
    deployment: Deployment,
    record: RunRecord,
    progress: Progress,
    left_rows: bool = False,
    waits: Sequence[float] = (),
) -> None:
    """Write the run's last record, unless a newer attempt has claimed the run; `left_rows`: a
    failed run that may have left commits in the tables; `waits`: seconds before each retry of
    a write that failed (a run that committed: a storage error that passes must not leave it
    `running` for ever, and a generated run id is never rerun)."""
    fault_point("before_run_record")
    committed = (
        left_rows or record.output_version is not None or record.quarantine_version is not None
    )
    if record.finished_at is None:
        record = record.with_(finished_at=datetime.now(UTC))
    for wait in (*waits, None):
        try:
            # Before each write: a newer attempt may claim the run while this one waits.
            require_ownership(spark, deployment.runs.path, record, committed)
            write_run(spark, deployment.runs.path, record, deployment.runs.table)
            break
        except (Py4JJavaError, PySparkException) as exc:
            if wait is None:
                raise
            _log.warning(
                "could not write the final record of run %s (%s); trying again in %.0f s",
                record.run_id,
                scrub(spark_error_message(exc)),
                wait,
            )
            time.sleep(wait)
    progress.stage(f"run {record.run_id} {record.status}")
