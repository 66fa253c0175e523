"""PySpark's query-context loggers are quiet while a run reports its errors itself, and left
as the user set them after it."""

from __future__ import annotations

import logging

from pyspark.logger import PySparkLogger

from lakescore.spark_logs import query_context_logs_quieted


def test_overlapping_runs_leave_the_loggers_as_they_found_them() -> None:
    """Two runs in notebook threads: the first to end put back the level it saw, quieting the
    other's errors no more, and the last put back the quiet level it saw, for good."""
    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    logger.setLevel(logging.WARNING)
    first, second = query_context_logs_quieted(), query_context_logs_quieted()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert logger.level == logging.CRITICAL  # the second run still reports its own errors
    second.__exit__(None, None, None)
    assert logger.level == logging.WARNING
