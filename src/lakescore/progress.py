"""Where a run is: one line per stage on stderr, so stdout stays free for results and --json.

On a terminal, Spark's own task bar fills the gaps between stage lines. Elsewhere (a scheduler's
log), a long stage prints a quiet heartbeat line with its task counts every `heartbeat` seconds.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from lakescore.redaction import scrub


class Progress:
    """Stage reports, plus task heartbeats for long Spark stages when not on a terminal."""

    def __init__(
        self, stream: TextIO | None = None, enabled: bool = True, heartbeat: float = 30.0
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._heartbeat = heartbeat
        self._start = time.monotonic()

    @property
    def interactive(self) -> bool:
        return self._enabled and self._stream.isatty()

    def stage(self, message: str) -> None:
        if not self._enabled:
            return
        elapsed = time.monotonic() - self._start
        self._stream.write(f"[lakescore {elapsed:6.1f}s] {scrub(message)}\n")
        self._stream.flush()

    @contextlib.contextmanager
    def tracking(self, spark: Any, label: str) -> Iterator[None]:
        """While the block runs Spark jobs, report finished/total tasks every heartbeat."""
        if not self._enabled or self.interactive:
            yield
            return
        done = threading.Event()
        thread = threading.Thread(
            target=self._beat, args=(spark.sparkContext.statusTracker(), label, done), daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def _beat(self, tracker: Any, label: str, done: threading.Event) -> None:
        while not done.wait(self._heartbeat):
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            finished = sum(s.numCompletedTasks for s in stages)
            total = sum(s.numTasks for s in stages)
            if total:
                self.stage(f"{label}: {finished}/{total} tasks finished")


SILENT = Progress(enabled=False)
