"""Ctrl-C, a cancelled notebook cell and SIGTERM stop a run promptly and let it record how it
ended, instead of leaving it `running` (or hanging).

PySpark's own SIGINT handler cancels the Spark jobs through Py4J from the main thread. While a
job runs, the main thread is waiting on its own Py4J connection for that job, so the cancel
queues behind the call it should end, and the run hangs until the job finishes. SIGTERM, the
signal a scheduler stops a job with, ends Python on the spot. During a run, both are handled
here instead: the run's own jobs (by job tag) are cancelled from another thread, which gets its
own connection, then the main thread gets KeyboardInterrupt, or `Terminated` for SIGTERM.
A second signal, or one that comes while the run takes back its commits and writes its
record, changes nothing: the run ends as it would have.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
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
        self._ending = False

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    def describe(self) -> str:
        """`interrupted (Ctrl-C ...)` or `terminated (SIGTERM)`."""
        return interruption(Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt())

    def exception(self, message: str = "") -> KeyboardInterrupt:
        """The exception that ends a stopped run: `message`, else how it was stopped."""
        error = Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()
        error.args = (message or self.describe(),)
        return error

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Note a signal without raising while the block sets up what a stop needs."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1

    def ending(self) -> None:
        """From here on the run only records how it ended (and takes back its commits if it
        failed): a signal is noted and changes nothing."""
        self._ending = True

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        """A signal during the block (take-backs that must finish) changes nothing; after it,
        signals stop the run again (a pass that is redone)."""
        was = self._ending
        self._ending = True
        try:
            yield
        finally:
            self._ending = was

    def cancel_jobs(self) -> None:
        """Cancel the run's Spark jobs again: a cancel reaches only the jobs running when it is
        made, and a commit on a worker thread may start one after."""
        _cancel_jobs(self.spark, self.tag)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None or self._ending:
            return  # already stopping or ending: let the take-backs and the record finish
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


def carry_local_properties(spark: SparkSession, work: Callable[..., _T]) -> Callable[..., _T]:
    """`work` with the calling thread's Spark local properties, for a pool thread (they belong
    to a thread, as PySpark's `InheritableThread` knows): the run's job tags, so that a stop
    of the run cancels the jobs it starts too and no one else's, and a notebook's job group,
    scheduler pool and description, so that its cancel of the cell's job group reaches them
    and they run where its other jobs run."""
    context = spark.sparkContext._jsc.sc()
    properties = context.getLocalProperties().clone()

    def run(*args: Any, **kwargs: Any) -> _T:
        own = context.getLocalProperties()
        context.setLocalProperties(properties.clone())  # a thread's own: Spark writes to it
        try:
            return work(*args, **kwargs)
        finally:
            context.setLocalProperties(own)

    return run


def on_worker_thread(stop: Stop, work: Callable[[], _T], name: str) -> _T:
    """`work` (which runs Spark jobs) on a worker thread with the caller's job tags, waited for.

    A stop then interrupts the wait, never `work`'s own Py4J call: a call cut mid-way leaves
    the JVM going on with it, and a write still being planned would start its job after the
    stop's one-time cancel and write its folder after the run had removed it. So after a stop
    the run's jobs are cancelled again each second until `work` has ended.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        future = pool.submit(carry_local_properties(stop.spark, work))
        try:
            return future.result()
        except BaseException:
            with stop.ignored():  # a second signal must not cut the wait short
                while not future.done():
                    stop.cancel_jobs()
                    futures.wait([future], timeout=1.0)
            raise


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
    found: dict[int, Any] = {}
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
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
    noise = _Py4JInterruptNoise(stop)
    try:
        with stop.deferred():  # all in place before a signal may raise
            context.addJobTag(tag)
            for sig in ours:
                signal.signal(sig, stop.handle)
            for name in _PY4J_LOGGERS:
                logging.getLogger(name).addFilter(noise)
        yield stop
    finally:
        stop.ending()
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
