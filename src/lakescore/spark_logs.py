"""PySpark logs each analysis error with its query context (a JSON record of several KB, with a
stack) before raising it; lakescore catches such errors and reports each in one sentence, so the
record is noise, in a notebook cell as much as on the command line."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from pyspark.logger import PySparkLogger

_QUERY_CONTEXT_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def quiet_query_context_logs() -> None:
    """For the rest of the process (the command line).

    The loggers must be PySpark's own class: a plain `logging.Logger` made first under the name
    makes PySpark's call to it raise TypeError (`unexpected keyword argument 'errorClass'`)
    instead of the real error."""
    for name in _QUERY_CONTEXT_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def query_context_logs_quieted() -> Iterator[None]:
    """For one run, called from a notebook or a script: their levels are put back after it.

    Runs in threads of one process share the loggers: the first to start saves their levels
    and the last to finish puts them back (each saving its own, two overlapping runs left the
    loggers quiet for good)."""
    global _quieting, _found
    loggers = [PySparkLogger.getLogger(name) for name in _QUERY_CONTEXT_LOGGERS]
    with _lock:
        if not _quieting:
            _found = [logger.level for logger in loggers]
            quiet_query_context_logs()
        _quieting += 1
    try:
        yield
    finally:
        with _lock:
            _quieting -= 1
            if not _quieting:
                for logger, level in zip(loggers, _found, strict=True):
                    logger.setLevel(level)


_lock = threading.Lock()
_quieting = 0  # runs inside query_context_logs_quieted
_found: list[int] = []  # the loggers' levels before the first of them
