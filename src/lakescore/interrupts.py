"""Ctrl-C, a cancelled notebook cell and SIGTERM stop a run promptly and let it record how it
ended, instead of leaving it `running` (or hanging).

PySpark's own SIGINT handler cancels the Spark jobs through Py4J from the main thread. While a
job runs, the main thread is waiting on its own Py4J connection for that job, so the cancel
queues behind the call it should end, and the run hangs until the job finishes. SIGTERM, the
signal a scheduler stops a job with, ends Python on the spot. During a run, both are handled
here instead: the run's own jobs (by job tag) are cancelled from another thread, which gets its
own connection, then the main thread gets KeyboardInterrupt, or `Terminated` for SIGTERM.
While the run takes back its commits and writes its record, a signal is only noted: the run
then ends as soon as the record is written.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

from pyspark.sql import SparkSession

from lakescore.errors import Terminated, interruption

_log = logging.getLogger(__name__)
_CANCEL_WAIT_SECONDS = 10.0  # cancelling is a message to Spark's scheduler: it returns at once
_T = TypeVar("_T")


class Stop:
    """The signal a run got, if any, and whether it may act on it now."""

    def __init__(self, spark: SparkSession, tag: str) -> None:
        self.spark = spark
        self.tag = tag
        self.signum: int | None = None
        self._deferring = 0

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    def describe(self) -> str:
        """`interrupted (Ctrl-C ...)` or `terminated (SIGTERM)`."""
        return interruption(Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt())

    def exception(self, detail: str = "") -> KeyboardInterrupt:
        """The exception that ends a stopped run, with `detail` after how it was stopped."""
        error = Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()
        error.args = (self.describe() + detail,)
        return error

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Note a signal without raising while the block writes what must be written."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return  # already stopping: let the take-backs and the record finish
        self.signum = signum
        if self._deferring:
            return
        # Cancel before raising: once KeyboardInterrupt reaches Py4J, it closes the gateway's
        # pooled connections, and a cancel on one of them would fail.
        cancel = threading.Thread(
            target=_cancel_jobs, args=(self.spark, self.tag), name="lakescore-cancel"
        )
        cancel.daemon = True
        cancel.start()
        cancel.join(timeout=_CANCEL_WAIT_SECONDS)
        raise self.exception()

    def tagged(self, work: Callable[..., _T]) -> Callable[..., _T]:
        """`work` with the run's job tag, for a thread of the run's own pools (tags belong to
        a thread), so that a stop cancels its jobs too and no one else's."""

        def run(*args: Any, **kwargs: Any) -> _T:
            context = self.spark.sparkContext
            context.addJobTag(self.tag)
            try:
                return work(*args, **kwargs)
            finally:
                context.removeJobTag(self.tag)

        return run


@contextlib.contextmanager
def stoppable(spark: SparkSession, tag: str) -> Iterator[Stop]:
    """Handle SIGINT and SIGTERM while the block runs, tag the block's Spark jobs with `tag`,
    then restore the handlers it found.

    Off the main thread (Python delivers signals only there) no handler changes. A signal
    someone chose to ignore stays ignored, and a SIGTERM handler someone else installed (a
    scheduler's own) stays theirs.
    """
    stop = Stop(spark, tag)
    context = spark.sparkContext
    context.addJobTag(tag)
    ours: list[int] = []
    found: dict[int, Any] = {}
    noise = _Py4JInterruptNoise(stop)
    if threading.current_thread() is threading.main_thread():
        # mlflow.pyfunc imports polars, whose runtime takes over SIGINT when it is first
        # imported (Ctrl-C then never reaches Python): import it before installing handlers.
        importlib.import_module("mlflow.pyfunc")
        found = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        ours = [
            sig
            for sig, handler in found.items()
            if handler is not None
            and handler is not signal.SIG_IGN
            and (sig == signal.SIGINT or handler is signal.SIG_DFL)
        ]
    for sig in ours:
        signal.signal(sig, stop.handle)
    for name in _PY4J_LOGGERS:
        logging.getLogger(name).addFilter(noise)
    try:
        yield stop
    finally:
        for sig in ours:
            signal.signal(sig, found[sig])
        for name in _PY4J_LOGGERS:
            logging.getLogger(name).removeFilter(noise)
        with contextlib.suppress(Exception):  # the JVM may be gone (a stopped spark-submit)
            context.removeJobTag(tag)


def _cancel_jobs(spark: SparkSession, tag: str) -> None:
    try:
        spark.sparkContext.cancelJobsWithTag(tag)
    except Exception:  # the JVM may be going away too (a signal to the whole process group)
        _log.warning("could not cancel the run's Spark jobs", exc_info=True)


_PY4J_LOGGERS = ("", "py4j.clientserver")  # Py4J logs some on the root logger


class _Py4JInterruptNoise(logging.Filter):
    """After a stop, Py4J logs a traceback at ERROR for the interrupted call and for each
    connection it closes; the run reports the stop itself."""

    def __init__(self, stop: Stop) -> None:
        super().__init__()
        self._stop = stop

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._stop.stopped and str(record.name).startswith(("root", "py4j")))
