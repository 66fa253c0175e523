"""Ctrl-C, a cancelled notebook cell and SIGTERM stop a run promptly and let it record how it
ended, instead of leaving it `running` (or hanging).

PySpark's own SIGINT handler cancels the Spark jobs through Py4J from the main thread. While a
job runs, the main thread is waiting on its own Py4J connection for that job, so the cancel
queues behind the call it should end, and the run hangs until the job finishes. SIGTERM, the
signal a scheduler stops a job with, ends Python on the spot. During a run, both are handled
here instead: the jobs are cancelled from another thread (which gets its own connection), then
the main thread gets KeyboardInterrupt, or `Terminated` for SIGTERM.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from pyspark.sql import SparkSession

from lakescore.errors import Terminated

_log = logging.getLogger(__name__)
_CANCEL_WAIT_SECONDS = 10.0  # cancelling is a message to Spark's scheduler: it returns at once


@contextlib.contextmanager
def stoppable(spark: SparkSession) -> Iterator[None]:
    """Handle SIGINT and SIGTERM while the block runs, then restore the handlers it found.

    Off the main thread (Python delivers signals only there) nothing changes. A signal someone
    chose to ignore stays ignored, and a SIGTERM handler someone else installed (a scheduler's
    own) stays theirs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        # Cancel before raising: once KeyboardInterrupt reaches Py4J, it closes the gateway's
        # pooled connections, and a cancel on one of them would fail.
        cancel = threading.Thread(
            target=_cancel_jobs, args=(spark,), name="lakescore-cancel", daemon=True
        )
        cancel.start()
        cancel.join(timeout=_CANCEL_WAIT_SECONDS)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    # mlflow.pyfunc imports polars, whose runtime takes over SIGINT when it is first imported
    # (Ctrl-C then never reaches Python): import it before installing the handlers.
    importlib.import_module("mlflow.pyfunc")
    found = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ours = [
        sig
        for sig, handler in found.items()
        if handler is not signal.SIG_IGN
        and (sig == signal.SIGINT or handler in (signal.SIG_DFL, None))
    ]
    for sig in ours:
        signal.signal(sig, stop)
    noise = _Py4JInterruptNoise()
    for name in _PY4J_LOGGERS:
        logging.getLogger(name).addFilter(noise)
    try:
        yield
    finally:
        for sig in ours:
            signal.signal(sig, found[sig])
        for name in _PY4J_LOGGERS:
            logging.getLogger(name).removeFilter(noise)


_PY4J_LOGGERS = ("", "py4j.clientserver")  # Py4J logs the first on the root logger


class _Py4JInterruptNoise(logging.Filter):
    """Py4J logs a traceback at ERROR for the interrupted call and for each connection it
    closes; the run reports the interruption itself."""

    _MESSAGES = (
        "KeyboardInterrupt while sending command.",
        "Exception occurred while shutting down connection",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self._MESSAGES


def _cancel_jobs(spark: SparkSession) -> None:
    try:
        spark.sparkContext.cancelAllJobs()
    except Exception:  # the JVM may be going away too (spark-submit stopping the driver)
        _log.warning("could not cancel the run's Spark jobs", exc_info=True)
