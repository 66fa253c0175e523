"""Named points where a test can stop a real run to kill it (SIGKILL) at a known stage.

Set LAKESCORE_FAULT_PAUSE_AT to a point's name and LAKESCORE_FAULT_MARKER to a file path: when
the run reaches that point it writes the marker and waits, so the test can kill the process
there (or, with LAKESCORE_FAULT_RESUME_FILE, until that file appears). Unset (always, outside
tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time

POINTS = (
    "after_listing",
    "before_scoring",
    "scoring",
    "after_predictions_commit",
    "before_run_record",
)


def fault_point(name: str) -> None:
    if name not in POINTS:  # every run passes each point: a misspelt one fails the tests
        raise ValueError(f"unknown fault point {name!r}; known: {', '.join(POINTS)}")
    if os.environ.get("LAKESCORE_FAULT_PAUSE_AT") != name:
        return
    marker = os.environ.get("LAKESCORE_FAULT_MARKER")
    if marker:
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {os.getpid()}\n")
    resume = os.environ.get("LAKESCORE_FAULT_RESUME_FILE")
    deadline = time.monotonic() + float(os.environ.get("LAKESCORE_FAULT_PAUSE_SECONDS", "600"))
    while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
        time.sleep(0.1)
