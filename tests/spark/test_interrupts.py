"""A stop cancels the run's own Spark jobs, not the others of the session, and leaves the
session's signal handlers and job tags as they were."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from lakescore.errors import AttemptSupersededError
from lakescore.interrupts import stoppable
from lakescore.runs import RunRecord, next_attempt, require_ownership, write_run


def slow_job(spark: Any, seconds: float) -> int:
    sleep = F.udf(lambda value: time.sleep(seconds) or value, "long")
    return len(spark.range(0, 2, 1, numPartitions=1).select(sleep("id")).collect())


def wait_for_end(spark: Any, job: int) -> str:
    tracker = spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 60
    while (status := str(tracker.getJobInfo(job).status)) == "RUNNING":
        assert time.monotonic() < deadline, f"job {job} still running"
        time.sleep(0.2)
    return status


def test_ctrl_c_cancels_the_runs_jobs_and_spares_another_threads(spark: Any) -> None:
    context = spark.sparkContext
    before = signal.getsignal(signal.SIGINT)
    other: dict[str, Any] = {}

    def neighbour() -> None:  # another notebook job, or another run, in the same session
        context.setJobGroup("neighbour", "not the run's")
        try:
            other["rows"] = slow_job(spark, 3)
        except Exception as exc:  # the test reports it
            other["error"] = exc

    active: list[int] = []

    def interrupt_once_both_run() -> None:
        tracker = context.statusTracker()
        deadline = time.monotonic() + 30
        while len(tracker.getActiveJobsIds()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        active.extend(tracker.getActiveJobsIds())
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), stoppable(spark, "lakescore-test-run") as stop:
        thread = threading.Thread(target=neighbour)
        thread.start()
        threading.Thread(target=interrupt_once_both_run, daemon=True).start()
        slow_job(spark, 60)

    [neighbours] = context.statusTracker().getJobIdsForGroup("neighbour")
    [runs] = [job for job in active if job != neighbours]
    assert neighbours in active  # it was running when the run was stopped
    assert wait_for_end(spark, runs) == "FAILED"  # cancelled, long before its 120 s
    thread.join(timeout=60)
    assert other == {"rows": 2} and wait_for_end(spark, neighbours) == "SUCCEEDED"
    assert stop.stopped and signal.getsignal(signal.SIGINT) is before
    assert "lakescore-test-run" not in context.getJobTags()


def test_a_signal_while_take_backs_run_changes_nothing_and_the_next_one_stops(
    spark: Any,
) -> None:
    with stoppable(spark, "lakescore-test-ignored") as stop:
        try:
            with stop.ignored():  # a failed run taking back its commits
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here, and must not raise
        except KeyboardInterrupt:
            pytest.fail("a signal during the take-backs stopped them")
        assert not stop.stopped
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the pass is redone: a stop stops it again
            time.sleep(5)
    assert stop.stopped


def test_an_earlier_attempts_row_does_not_supersede_a_later_attempt(
    spark: Any, tmp_path: Path
) -> None:
    """When attempt 2 could not write its `running` record (a stop cancelled it), the runs
    table still holds attempt 1's row: attempt 2 may still record how it ended."""
    path = str(tmp_path / "runs")
    started = datetime(2026, 11, 26, tzinfo=UTC)
    first = RunRecord("r", "d", "succeeded", started, "/in")
    write_run(spark, path, first)
    second = next_attempt(RunRecord("r", "d", "running", started, "/in"), first.__dict__)
    require_ownership(spark, path, second)  # no error

    third = next_attempt(RunRecord("r", "d", "running", started, "/in"), second.__dict__)
    write_run(spark, path, third)
    with pytest.raises(AttemptSupersededError, match="stops without committing"):
        require_ownership(spark, path, second)
    # Seen only after its commits (checked again before its record): it did commit.
    with pytest.raises(AttemptSupersededError, match="this attempt's rows are committed"):
        require_ownership(spark, path, second, committed=True)


def test_a_pool_thread_runs_its_jobs_in_the_callers_job_group_and_pool(spark: Any) -> None:
    """Commits and the staging write run on pool threads: a notebook's cancel of the cell's
    job group (how Databricks cancels a cell) and its scheduler pool must reach their jobs as
    they reach those of the calling thread; the run's tags too, so that a stop cancels them."""
    from concurrent.futures import ThreadPoolExecutor

    from lakescore.interrupts import carry_local_properties

    context = spark.sparkContext
    context.setJobGroup("notebook-cell", "a cell's jobs")
    context.setLocalProperty("spark.scheduler.pool", "cells")
    context.addJobTag("lakescore-carried")
    try:

        def on_pool_thread() -> tuple[Any, ...]:
            spark.range(3).count()
            return context.getLocalProperty("spark.scheduler.pool"), context.getJobTags()

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool_name, tags = pool.submit(carry_local_properties(spark, on_pool_thread)).result()
            left = pool.submit(lambda: (context.getLocalProperty("spark.scheduler.pool"),)).result()
    finally:
        context.removeJobTag("lakescore-carried")
        context.setLocalProperty("spark.scheduler.pool", None)
        context._jsc.clearJobGroup()

    assert context.statusTracker().getJobIdsForGroup("notebook-cell")  # the pool thread's job
    assert pool_name == "cells" and "lakescore-carried" in tags
    assert left == (None,)  # the pool thread's own properties are back after the work
