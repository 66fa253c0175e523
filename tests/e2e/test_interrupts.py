"""A run stopped by Ctrl-C (a cancelled notebook cell), by SIGTERM (a scheduler stopping the job)
or by an unexpected error records how it ended, takes back what it committed, and leaves nothing
staged, so the runs table never says `running` for a run that is over."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from paused_runs import paused_run

from lakescore.attempts import STOPPED_COMMITTING, TOOK_BACK_COMMITS
from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.errors import LakescoreError
from lakescore.progress import Progress
from lakescore.runner import score
from lakescore.runs import RunRecord, get_run, next_attempt, write_run


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def rows_of(path: str, run_id: str) -> int:
    """Rows of the run id in a table (0 when the table was never created)."""
    if not Path(path, "_delta_log").exists():
        return 0
    return int((read(path)["_run_id"] == run_id).sum())


def signal_at(
    point: str, signals: list[int], deployment_file: Path, run_id: str, tmp_path: Path
) -> tuple[int, dict[str, Any]]:
    """Start `lakescore score --json`, wait until it pauses at `point`, send `signals` to the
    lakescore process alone (as `kill PID` does; Spark's JVM does not get them), let the pause
    end, and return its exit code and the JSON it printed."""
    with paused_run(point, deployment_file, run_id, tmp_path, "--json") as (process, resume):
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.5)
        resume.write_text("")  # a pause in the driver that noted the signal goes on
        out, _ = process.communicate(timeout=240)
    return process.returncode, json.loads(out)


def staging_of(deployment: Any, run_id: str) -> Path:
    return Path(deployment.output.path).parent / "_lakescore_staging" / deployment.name / run_id


@pytest.mark.e2e
def test_ctrl_c_during_scoring_records_the_run_as_interrupted(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=300, files=2)
    deployment = load_deployment(deployment_file)

    code, output = signal_at("scoring", [signal.SIGINT], deployment_file, "nightly", tmp_path)

    assert code == 130
    assert output["exit_code"] == 130 and "interrupted" in output["error"]
    run = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert run["status"] == "failed"
    assert run["error"].startswith("Run nightly was interrupted (Ctrl-C")
    assert "committing" not in run["error"]  # it stopped before any commit
    assert output["run"]["status"] == "failed" and output["run"]["error"] == run["error"]
    assert output["error"] == run["error"]  # the run id, as the runs table says it
    assert rows_of(deployment.output.path, "nightly") == 0
    assert not staging_of(deployment, "nightly").exists()

    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    capsys.readouterr()
    rerun = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert rerun["status"] == "succeeded"
    assert [(a["attempt"], a["status"]) for a in rerun["previous_attempts"]] == [(1, "failed")]


@pytest.mark.e2e
def test_sigterm_after_the_predictions_commit_takes_it_back(lakehouse: Any, tmp_path: Path) -> None:
    deployment_file = lakehouse(rows=300, files=2)
    deployment = load_deployment(deployment_file)

    # Twice, as an impatient scheduler does: the second must not cut the take-backs or record.
    code, output = signal_at(
        "after_predictions_commit",
        [signal.SIGTERM, signal.SIGTERM],
        deployment_file,
        "nightly",
        tmp_path,
    )

    assert code == 143
    run = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert output["error"] == run["error"]
    assert run["status"] == "failed" and run["finished_at"] is not None
    assert run["error"].startswith("Run nightly was terminated (SIGTERM) before it finished")
    # Every commit was taken back: neither this record nor a later attempt's warns of its rows.
    assert TOOK_BACK_COMMITS in run["error"] and STOPPED_COMMITTING not in run["error"]
    # The predictions commit happened and was taken back; so was the quarantine's.
    history = DeltaTable(deployment.output.path).history()
    assert any("revert" in str(entry.get("userMetadata")) for entry in history)
    assert rows_of(deployment.output.path, "nightly") == 0
    assert rows_of(deployment.quarantine.path, "nightly") == 0
    assert not staging_of(deployment, "nightly").exists()


@pytest.mark.e2e
def test_a_stop_while_the_final_record_is_written_lets_it_finish(
    lakehouse: Any, tmp_path: Path
) -> None:
    deployment_file = lakehouse(rows=200, files=2)
    deployment = load_deployment(deployment_file)

    code, output = signal_at(
        "before_run_record", [signal.SIGINT], deployment_file, "nightly", tmp_path
    )

    # Everything was committed: the stop does not change how the run ends.
    assert code == 0 and output["status"] == "succeeded"
    run = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert run["status"] == "succeeded"
    assert (
        rows_of(deployment.output.path, "nightly") + rows_of(deployment.quarantine.path, "nightly")
        == 200
    )


class _StopWhen(Progress):
    """A progress reporter that, when a stage line matches `pattern`, raises `error` (a bug at a
    known point of a real run) or sends this process `signum` (a notebook's cancel is SIGINT to
    its kernel: the run's own handler then takes it, as in a notebook)."""

    def __init__(
        self, pattern: str, error: BaseException | None = None, signum: int | None = None
    ) -> None:
        super().__init__(enabled=False)
        self._pattern, self._error, self._signum = re.compile(pattern), error, signum

    def stage(self, message: str) -> None:
        if not self._pattern.match(message):
            return
        if self._signum is not None:
            os.kill(os.getpid(), self._signum)
            time.sleep(5)  # the handler raises here, on the main thread, before this ends
        if self._error is not None:
            raise self._error


def test_a_cancelled_notebook_cell_records_the_run_and_takes_back_its_commit(
    spark: Any, lakehouse: Any
) -> None:
    deployment = load_deployment(lakehouse(rows=200, files=2))

    with pytest.raises(KeyboardInterrupt) as stopped:
        score(
            spark,
            deployment,
            "cell",
            _StopWhen(r"committed [\d,]+ predictions", signum=signal.SIGINT),
        )

    run = read(deployment.runs.path).set_index("run_id").loc["cell"]
    assert run["status"] == "failed" and "interrupted" in run["error"]
    assert TOOK_BACK_COMMITS in run["error"] and TOOK_BACK_COMMITS in str(stopped.value)
    assert STOPPED_COMMITTING not in run["error"]
    assert stopped.value.run_record["status"] == "failed"  # type: ignore[attr-defined]
    assert rows_of(deployment.output.path, "cell") == 0
    assert rows_of(deployment.quarantine.path, "cell") == 0


@pytest.mark.parametrize("table", ["quarantined rows", "predictions"])
def test_a_commit_that_fails_after_delta_committed_it_is_taken_back(
    spark: Any, lakehouse: Any, table: str
) -> None:
    # A commit's call fails after Delta committed its rows (here its progress line raises; a
    # job cancelled while it reads its version back does the same): the run never learns the
    # commit's version, and must find it to take it back, with the other table's commit.
    deployment = load_deployment(lakehouse(rows=200, files=2))

    with pytest.raises(RuntimeError, match="reporter broke"):
        score(
            spark,
            deployment,
            "late",
            _StopWhen(rf"committed [\d,]+ {table}", RuntimeError("reporter broke")),
        )

    failed = deployment.quarantine.path if table == "quarantined rows" else deployment.output.path
    history = DeltaTable(failed).history()
    assert any("revert" in str(entry.get("userMetadata")) for entry in history)
    assert rows_of(deployment.quarantine.path, "late") == 0
    assert rows_of(deployment.output.path, "late") == 0
    run = read(deployment.runs.path).set_index("run_id").loc["late"]
    assert run["status"] == "failed" and "reporter broke" in run["error"]


def test_a_commit_to_a_table_untouched_for_longer_than_its_retention_is_taken_back(
    spark: Any, lakehouse: Any
) -> None:
    """Delta refuses to read a version older than `delta.deletedFileRetentionDuration` (7 days
    by default): a weekly job's failed run kept its rows, the take-back refused."""
    deployment = load_deployment(lakehouse(rows=200, files=2))
    score(spark, deployment, "last-week")
    spark.sql(
        f"ALTER TABLE delta.`{deployment.quarantine.path}` "
        "SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 1 seconds')"
    )
    time.sleep(2)  # the table's last version is now older than its retention

    broken = LakescoreError("the predictions commit broke.")
    with pytest.raises(LakescoreError, match="the predictions commit broke"):
        score(spark, deployment, "this-week", _StopWhen(r"committed [\d,]+ quarantined", broken))

    assert rows_of(deployment.quarantine.path, "this-week") == 0
    assert rows_of(deployment.quarantine.path, "last-week") > 0
    run = read(deployment.runs.path).set_index("run_id").loc["this-week"]
    assert STOPPED_COMMITTING not in run["error"]


class _LogCleanedThenBroken(Progress):
    """Once the quarantine is committed, Delta's log cleanup (past delta.logRetentionDuration,
    30 days: a monthly job's table) leaves only the newest version's checkpoint; then the run
    fails."""

    def __init__(self, log: Path) -> None:
        super().__init__(enabled=False)
        self._log = log

    def stage(self, message: str) -> None:
        if not re.match(r"committed [\d,]+ quarantined rows", message):
            return
        newest = max(int(f.name.split(".")[0]) for f in self._log.glob("*.json"))
        for file in self._log.iterdir():
            if file.name[:20].isdigit() and int(file.name[:20]) < newest:
                file.unlink()
        raise LakescoreError("the predictions commit broke.")


def test_a_first_attempts_commit_is_taken_back_without_the_tables_earlier_versions(
    spark: Any, lakehouse: Any
) -> None:
    """The take-back read the version before the commit, whose log files Delta's cleanup may
    have removed: the run's rows stayed. A run id new to the table had no rows before."""
    deployment = load_deployment(lakehouse(rows=200, files=2))
    score(spark, deployment, "last-month")
    spark.sql(
        f"ALTER TABLE delta.`{deployment.quarantine.path}` "
        "SET TBLPROPERTIES ('delta.checkpointInterval' = '1')"
    )
    log = Path(deployment.quarantine.path, "_delta_log")

    with pytest.raises(LakescoreError, match="the predictions commit broke"):
        score(spark, deployment, "this-month", _LogCleanedThenBroken(log))

    assert rows_of(deployment.quarantine.path, "this-month") == 0
    assert rows_of(deployment.quarantine.path, "last-month") > 0
    run = read(deployment.runs.path).set_index("run_id").loc["this-month"]
    assert STOPPED_COMMITTING not in run["error"]


class _ClaimedThenBroken(Progress):
    """Once the quarantine is committed, a newer attempt of the run claims it (someone started
    it again by hand), then the older attempt fails."""

    def __init__(
        self, spark: Any, runs_path: str, run_id: str, error: Exception | None = None
    ) -> None:
        super().__init__(enabled=False)
        self._spark, self._runs_path, self._run_id = spark, runs_path, run_id
        self._error = error or RuntimeError("reporter broke")

    def stage(self, message: str) -> None:
        if not re.match(r"committed [\d,]+ quarantined rows", message):
            return
        older = get_run(self._spark, self._runs_path, self._run_id)
        assert older is not None
        started = datetime.now(UTC)
        running = RunRecord(self._run_id, older["deployment"], "running", started, older["input"])
        write_run(self._spark, self._runs_path, next_attempt(running, older))
        raise self._error


def test_a_failed_attempt_leaves_its_commits_to_a_newer_attempt_that_claimed_the_run(
    spark: Any, lakehouse: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Reverting would put back the rows the run id had before this attempt's commit, removing
    # any the newer attempt commits meanwhile; the newer one replaces these rows anyway.
    deployment = load_deployment(lakehouse(rows=200, files=2))
    progress = _ClaimedThenBroken(spark, deployment.runs.path, "claimed")

    with (
        caplog.at_level(logging.WARNING, logger="lakescore"),
        pytest.raises(RuntimeError, match="reporter broke"),
    ):
        score(spark, deployment, "claimed", progress)

    assert "not taking back this attempt's commits" in caplog.text
    assert rows_of(deployment.quarantine.path, "claimed") > 0
    history = DeltaTable(deployment.quarantine.path).history()
    assert not any("revert" in str(entry.get("userMetadata")) for entry in history)
    # Its record is not written over the newer attempt's, and no log says it committed nothing.
    assert "stops without committing" not in caplog.text
    assert "does not record how this attempt ended" in caplog.text
    assert read(deployment.runs.path).set_index("run_id").loc["claimed", "status"] == "running"


def test_a_failure_after_a_newer_attempt_claimed_the_run_is_raised_saying_so(
    spark: Any, lakehouse: Any
) -> None:
    """A failure of lakescore's own kind: the run's error is raised, with the claim and what
    this attempt left said, not only the claim (which said it had committed nothing)."""
    deployment = load_deployment(lakehouse(rows=200, files=2))
    broken = LakescoreError("The quarantine commit's reporter broke.")
    progress = _ClaimedThenBroken(spark, deployment.runs.path, "claimed", broken)

    with pytest.raises(LakescoreError) as raised:
        score(spark, deployment, "claimed", progress)

    said = str(raised.value)
    assert said.startswith("The quarantine commit's reporter broke; it was committing")
    assert "was left for the newer attempt that claimed the run to replace" in said
    assert "this attempt's rows are committed, and are replaced when that attempt commits" in said


def test_an_unexpected_error_is_recorded_with_its_type(spark: Any, lakehouse: Any) -> None:
    deployment = load_deployment(lakehouse(rows=100, files=1))

    with pytest.raises(RuntimeError, match="reporter broke"):
        score(spark, deployment, "bug", _StopWhen("validating", RuntimeError("reporter broke")))

    run = read(deployment.runs.path).set_index("run_id").loc["bug"]
    assert run["status"] == "failed"
    assert run["error"] == "Run bug failed with an unexpected RuntimeError: reporter broke."
    assert rows_of(deployment.output.path, "bug") == 0


def test_a_stop_while_a_committed_run_cleans_up_leaves_it_succeeded(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both commits landed; a Ctrl-C while the staging folder is removed made the run `failed`
    (exit 130) with its rows kept in both tables."""
    import lakescore.runner as runner

    deployment = load_deployment(lakehouse(rows=200, files=2))
    delete = runner.delete_staging

    def stopped_while_deleting(*args: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs here, on the main thread (at once)
        delete(*args)

    monkeypatch.setattr(runner, "delete_staging", stopped_while_deleting)
    result = score(spark, deployment, "tidy")

    assert result.record.status == "succeeded"
    run = read(deployment.runs.path).set_index("run_id").loc["tidy"]
    assert run["status"] == "succeeded"
    tables = (deployment.output.path, deployment.quarantine.path)
    assert sum(rows_of(table, "tidy") for table in tables) == 200


def test_a_stop_once_both_commits_landed_leaves_the_run_succeeded(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C while the commits' threads were shut down, both commits landed, was taken as
    one during the commits: the failed-files commit was taken back, the predictions and the
    quarantine stayed, and the run said `failed`."""
    import lakescore.commits as commits

    deployment = load_deployment(lakehouse(rows=200, files=2))
    leave = commits.Commits.__exit__
    calls = []

    def stopped_while_leaving(self: Any, *exc_info: Any) -> None:
        calls.append(exc_info[0])
        if len(calls) == 1:  # the two tables' commits (inside the failed files' commit)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs here, on the main thread (at once)
        leave(self, *exc_info)

    monkeypatch.setattr(commits.Commits, "__exit__", stopped_while_leaving)
    try:
        result = score(spark, deployment, "landed")
    except KeyboardInterrupt as stopped:  # not raised on: it would end the whole test session
        pytest.fail(f"the stop failed a run whose commits had landed: {stopped}")

    assert result.record.status == "succeeded"
    assert read(deployment.runs.path).set_index("run_id").loc["landed"]["status"] == "succeeded"
    tables = (deployment.output.path, deployment.quarantine.path)
    assert sum(rows_of(table, "landed") for table in tables) == 200


def test_a_commit_whose_landing_cannot_be_looked_up_is_in_the_runs_record(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit's call failed after Delta committed it, and its table's history could not be
    read either: taken as not landed, it stayed, and the record did not say so."""
    import lakescore.commits as commits

    deployment = load_deployment(lakehouse(rows=200, files=2))

    def unreadable(*args: Any) -> None:
        raise OSError("storage refused the read")

    monkeypatch.setattr(commits, "committed_version", unreadable)
    broken = LakescoreError("the quarantine commit broke.")
    with pytest.raises(LakescoreError, match="quarantine table landed could not be seen"):
        score(spark, deployment, "unseen", _StopWhen(r"committed [\d,]+ quarantined rows", broken))

    run = read(deployment.runs.path).set_index("run_id").loc["unseen"]
    assert run["error"].startswith(f"the quarantine commit broke; {STOPPED_COMMITTING}")
    assert rows_of(deployment.quarantine.path, "unseen") > 0  # as the record says


def test_a_staging_folder_that_cannot_be_removed_does_not_fail_a_committed_run(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import lakescore.runner as runner

    deployment = load_deployment(lakehouse(rows=200, files=2))

    def refused(*args: Any) -> None:
        raise OSError("Permission denied")

    monkeypatch.setattr(runner, "delete_staging", refused)
    with caplog.at_level(logging.WARNING, logger="lakescore.runner"):
        result = score(spark, deployment, "kept")

    assert result.record.status == "succeeded"
    assert read(deployment.runs.path).set_index("run_id").loc["kept"]["status"] == "succeeded"
    assert "could not remove the staging folder" in caplog.text


def test_a_stop_while_the_staging_write_is_planned_leaves_no_staging_folder(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop cuts Python's call, not the JVM's: a write still being planned submits its job
    after the stop's one-time cancel. The run waits for it (cancelling it) before removing the
    staging folder, which the write would otherwise create again after the removal: the
    rows as read, left behind in a notebook's long-lived JVM."""
    import lakescore.runner as runner
    from lakescore.interrupts import carry_local_properties

    deployment = load_deployment(lakehouse(rows=200, files=2))
    write = runner.write_staging
    landed: list[threading.Thread] = []

    def planned_while_stopped(frame: Any, path: str) -> None:
        def later() -> None:  # the JVM going on: its job starts a second after the stop
            time.sleep(1.0)
            with contextlib.suppress(Exception):  # cancelled, if the run still waits for it
                write(frame, path)

        jvm = threading.Thread(target=carry_local_properties(spark, later))
        landed.append(jvm)
        jvm.start()
        os.kill(os.getpid(), signal.SIGINT)
        jvm.join()

    monkeypatch.setattr(runner, "write_staging", planned_while_stopped)
    with pytest.raises(KeyboardInterrupt):
        score(spark, deployment, "planned")
    for thread in landed:
        thread.join()

    run = read(deployment.runs.path).set_index("run_id").loc["planned"]
    assert run["status"] == "failed" and "interrupted" in run["error"]
    assert not staging_of(deployment, "planned").exists()


def test_a_commit_that_could_not_be_taken_back_is_in_the_runs_record(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed run changes no table, unless taking back its commit fails too (storage down,
    the old version vacuumed): the record said only why the run failed, and a later attempt's
    record did not say the rows might still be there."""
    import lakescore.commits as commits

    deployment = load_deployment(lakehouse(rows=200, files=2))

    def refused(*args: Any) -> None:
        raise OSError("storage refused the write")

    monkeypatch.setattr(commits, "revert_run_rows", refused)
    broken = LakescoreError("the quarantine commit broke.")
    with pytest.raises(LakescoreError, match=r"its commit to the .*quarantine tables? failed too"):
        score(spark, deployment, "stuck", _StopWhen(r"committed [\d,]+ quarantined rows", broken))

    run = read(deployment.runs.path).set_index("run_id").loc["stuck"]
    assert run["status"] == "failed"
    assert run["error"].startswith(f"the quarantine commit broke; {STOPPED_COMMITTING}")
    assert rows_of(deployment.quarantine.path, "stuck") > 0  # as the record says

    monkeypatch.undo()
    with pytest.raises(LakescoreError, match="again"):
        score(spark, deployment, "stuck", _StopWhen("validating", LakescoreError("again.")))
    rerun = read(deployment.runs.path).set_index("run_id").loc["stuck"]
    assert "may still hold rows that attempt 1 of run stuck committed" in rerun["error"]
