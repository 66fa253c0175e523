"""A real `lakescore score` in its own process, paused at one of `lakescore.faults`' points, for
tests that kill, signal or race it there."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lakescore.faults import POINTS

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def paused_run(
    point: str,
    deployment_file: Path,
    run_id: str,
    tmp_path: Path,
    *options: str,
    capture_stderr: bool = False,
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Start the run in its own session, wait until it pauses at `point`, and yield it with the
    file whose creation lets the pause end. A process still alive at the end is killed with its
    whole process group (Spark's JVM and Python workers too)."""
    assert point in POINTS, f"no fault point {point!r} in lakescore.faults"
    marker = tmp_path / f"{point}.marker"
    resume = tmp_path / f"{point}.resume"
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "LAKESCORE_FAULT_PAUSE_AT": point,
        "LAKESCORE_FAULT_MARKER": str(marker),
        "LAKESCORE_FAULT_RESUME_FILE": str(resume),
    }
    process = subprocess.Popen(
        [str(BIN / "lakescore"), "score", str(deployment_file), "--run-id", run_id, *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if process.poll() is not None:
                raise AssertionError(
                    f"the run ended before reaching {point}: {process.communicate()[1] or ''}"
                )
            assert time.monotonic() < deadline, f"the run never reached {point}"
            time.sleep(0.5)
        yield process, resume
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
