"""Where a run is: one line per stage, on stderr, so stdout stays for results and --json."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Line-oriented stage reports; on a terminal Spark's own task bar fills the gaps between."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._start = time.monotonic()

    @property
    def interactive(self) -> bool:
        return self._enabled and self._stream.isatty()

    def stage(self, message: str) -> None:
        if not self._enabled:
            return
        elapsed = time.monotonic() - self._start
        self._stream.write(f"[lakescore {elapsed:6.1f}s] {message}\n")
        self._stream.flush()


SILENT = Progress(enabled=False)
