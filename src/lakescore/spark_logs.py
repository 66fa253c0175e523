"""PySpark logs each analysis error with its query context (a JSON record of several KB, with a
stack) before raising it; lakescore catches such errors and reports each in one sentence, so the
record is noise, in a notebook cell as much as on the command line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from pyspark.logger import PySparkLogger

from lakescore.shared_state import changed_while_held

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
    """For one run, called from a notebook or a script: their levels are put back after it
    (after the last of overlapping runs, see shared_state.py)."""
    loggers = [PySparkLogger.getLogger(name) for name in _QUERY_CONTEXT_LOGGERS]

    def quiet() -> list[int]:
        found = [logger.level for logger in loggers]
        quiet_query_context_logs()
        return found

    def restore(found: list[int]) -> None:
        for logger, level in zip(loggers, found, strict=True):
            logger.setLevel(level)

    with changed_while_held("query context logs", quiet, restore):
        yield
