"""A stop cancels the run's own Spark jobs, not the others of the session, and puts the
session's signal handlers back."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from pyspark.sql import functions as F

from lakescore.interrupts import stoppable


def slow_job(spark: Any, seconds: float) -> int:
    sleep = F.udf(lambda value: time.sleep(seconds) or value, "long")
    return len(spark.range(2).repartition(1).select(sleep("id")).collect())


def test_ctrl_c_cancels_the_runs_jobs_and_spares_another_threads(spark: Any) -> None:
    before = signal.getsignal(signal.SIGINT)
    other: dict[str, Any] = {}

    def neighbour() -> None:  # another notebook job, or another run, in the same session
        try:
            other["rows"] = slow_job(spark, 4)
        except Exception as exc:  # the test reports it
            other["error"] = exc

    thread = threading.Thread(target=neighbour)
    thread.start()
    with pytest.raises(KeyboardInterrupt), stoppable(spark, "lakescore-test-run") as stop:
        # Once the handlers are in place: the signal comes while the run's job runs.
        threading.Timer(3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        slow_job(spark, 60)
    assert time.monotonic() - started < 30  # cancelled, not waited for
    assert stop.stopped and signal.getsignal(signal.SIGINT) is before
    thread.join(timeout=60)
    assert other == {"rows": 2}
