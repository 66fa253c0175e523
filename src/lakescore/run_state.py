"""A run's state as it goes: its record so far, and what every step after reading needs."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from lakescore import pipeline
from lakescore.config import Deployment
from lakescore.errors import LakescoreError, spark_error_message
from lakescore.interrupts import Stop
from lakescore.model import ResolvedModel
from lakescore.progress import Progress
from lakescore.redaction import scrub
from lakescore.runs import RunRecord
from lakescore.table_fit import Fit

_log = logging.getLogger(__name__)


class RunState:
    """The record as far as the run got, so a failure is recorded with everything known."""

    def __init__(
        self, record: RunRecord, recorded: Future[None], record_path: str, stop: Stop
    ) -> None:
        self.record = record
        self.record_path = record_path  # the runs table
        self.stop = stop  # the run's signal handling and job tag
        self.files: tuple[str, ...] = ()
        self.committing = False  # set once the first table commit may have begun
        self.unreverted: list[str] = []  # tables whose commit could not be taken back
        self.unchecked: list[str] = []  # tables whose commit may have landed, unseen
        self.left_to_newer: list[str] = []  # tables whose commit a newer attempt replaces
        self.took_back = False  # set once every commit that landed was taken back
        self._recorded = recorded

    def wait_until_recorded(self) -> None:
        """Block until the `running` record is written; raise what writing it raised."""
        try:
            self._recorded.result()
        except (Py4JJavaError, PySparkException) as exc:
            raise LakescoreError(
                f"Run {self.record.run_id} could not write its record to the runs table at "
                f"{scrub(self.record_path)}: {spark_error_message(exc)}"
            ) from exc

    def wait_quietly(self) -> None:
        """On the way out after a failure: the final record replaces the first either way."""
        try:
            self._recorded.result()
        except Exception as exc:  # the final write reports a storage problem again
            _log.debug("writing the running record failed", exc_info=True)
            _log.warning("writing the running record failed: %s", spark_error_message(exc))

    def update(self, **changes: Any) -> RunRecord:
        self.record = self.record.with_(**changes)
        return self.record


@dataclass(frozen=True)
class RunContext:
    """What every step after reading needs."""

    spark: SparkSession
    deployment: Deployment
    state: RunState
    progress: Progress
    model: ResolvedModel
    stamp: pipeline.RunStamp  # the run's constant lineage, added to the staged rows at commit
    stats_columns: str  # the predictions table's delta.dataSkippingStatsColumns, if created
    prediction_fit: Fit  # casts to the types an existing table stores
    quarantine_fit: Fit
