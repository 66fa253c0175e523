"""Process-wide state that lakescore changes for a run and puts back after it (a session
setting, PySpark's logger levels, MLflow's environment variables).

Runs in threads of one process (a notebook's) share that state: the first run to start saves
it and the last to finish puts it back. Each run saving its own left the state changed for
good when two overlapped, the second having saved the first one's change.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

Saved = TypeVar("Saved")


@contextlib.contextmanager
def changed_while_held(
    slot: Hashable, change: Callable[[], Saved], restore: Callable[[Saved], None]
) -> Iterator[None]:
    """`change()` when no run holds `slot` (it returns what `restore` needs), `restore` when
    the last run holding it lets go."""
    with _lock:
        holders, saved = _held.get(slot, (0, None))
        if not holders:
            saved = change()  # first: if it fails, nothing is held and nothing put back
        _held[slot] = (holders + 1, saved)
    try:
        yield
    finally:
        with _lock:
            holders, saved = _held.pop(slot)
            if holders > 1:
                _held[slot] = (holders - 1, saved)
            else:
                restore(saved)


_lock = threading.Lock()
_held: dict[Hashable, tuple[int, Any]] = {}  # slot -> (runs holding it, what its first saved)
