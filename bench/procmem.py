"""Peak memory and CPU time of a whole process tree, from /proc (Linux only, no psutil).

Every `interval` seconds the poller finds the root process and all its descendants (the scorer's
Python driver, the JVM it launches, Spark's Python daemon and workers, or a multiprocessing pool)
and sums their VmRSS. The peak of that sum is reported. RSS counts pages shared between processes
once per process, so the sum overstates the physical memory in use, and not the same way for
every scorer: the limit's workers are forked after its parent loaded the model (copy-on-write
pages, shared), Spark's Python workers load everything after their fork. The peak of the summed
PSS (each shared page divided among the processes sharing it, from smaps_rollup) is reported
beside it, and is the fairer of the two.

CPU time is each process's user + system time, as last seen by the poller (a process that
exits loses at most its last `interval`), summed by kind: the scorer's own Python process, the
JVM, and every other process (Spark's Python daemon and workers, or a multiprocessing pool).

One case is left out: a child that shows exactly its parent's command line and VmRSS. That is a
process between vfork and exec, sharing its parent's memory outright; the JVM makes one each time
Hadoop's local file system runs `chmod` (posix_spawn), and counting it would double the JVM.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field


@dataclass
class TreeMemory:
    peak_kib: int = 0
    peak_pss_kib: int = 0
    peak_processes: int = 0
    max_processes: int = 0
    samples: int = 0
    # At the peak: (pid, short command line, RSS KiB) of each process, largest first.
    peak_breakdown: list[tuple[int, str, int]] = field(default_factory=list)
    # The last CPU seconds seen per process, and its kind (see process_kind).
    cpu_s: dict[int, tuple[str, float]] = field(default_factory=dict)

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds of the tree, summed by kind of process."""
        totals: dict[str, float] = {}
        for kind, seconds in self.cpu_s.values():
            totals[kind] = round(totals.get(kind, 0.0) + seconds, 1)
        return totals


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:
                continue  # exited while we looked
            # The command name (field 2) may hold spaces and parentheses; ppid follows the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(root: int) -> dict[int, int | None]:
    """`root` and every descendant of it that exists now, each with its parent."""
    children = _parent_map()
    found: dict[int, int | None] = {root: None}
    stack = [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            found[child] = pid
            stack.append(child)
    return found


def tree_pids(root: int) -> list[int]:
    """`root` and every descendant of it that exists now."""
    return list(tree(root))


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB; 0 if it is gone (or a zombie, which has none)."""
    return _proc_kib(f"/proc/{pid}/status", "VmRSS:")


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (shared pages divided among their sharers);
    0 if it is gone, or the kernel has no smaps_rollup."""
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def _proc_kib(path: str, field: str) -> int:
    """The KiB of the line starting with `field` in a /proc file; 0 if it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # fields[0] is the state (field 3)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_kind(pid: int, root: int) -> str:
    if pid == root:
        return "driver"
    return "jvm" if command(pid).startswith("java") else "python_workers"


def command(pid: int, limit: int = 100) -> str:
    """A short form of the process's command line: the program's name and its next arguments."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    args = [a for a in args if a]
    if not args:
        return "?"
    program = os.path.basename(args[0])
    if program == "java":
        main = next((a for a in args if a.startswith("org.apache.")), "")
        return f"java {main}"[:limit]
    return " ".join([program, *args[1:4]])[:limit]


class TreePoller:
    """Samples the tree's summed RSS on a background thread until `stop()`."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.result = TreeMemory()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-rss", daemon=True)

    def start(self) -> TreePoller:
        self._thread.start()
        return self

    def stop(self) -> TreeMemory:
        self._done.set()
        self._thread.join(timeout=5)
        return self.result

    def sample(self) -> None:
        parents = tree(self.root)
        pids = list(parents)
        sizes = {pid: rss_kib(pid) for pid in pids}
        for pid, parent in parents.items():
            if (
                parent is not None
                and sizes[pid]
                and sizes[pid] == sizes.get(parent)
                and command(pid) == command(parent)
            ):
                sizes[pid] = 0  # between vfork and exec: the parent's own memory
        result = self.result
        for pid in pids:
            seconds = cpu_seconds(pid)
            if seconds is not None:  # kind each time: a launcher script execs into the JVM
                result.cpu_s[pid] = (process_kind(pid, self.root), seconds)
        total = sum(sizes.values())
        proportional = sum(pss_kib(pid) for pid, kib in sizes.items() if kib)
        result.peak_pss_kib = max(result.peak_pss_kib, proportional)
        result.samples += 1
        result.max_processes = max(result.max_processes, len(pids))
        if total > result.peak_kib:
            result.peak_kib = total
            result.peak_processes = len(pids)
            result.peak_breakdown = sorted(
                ((pid, command(pid), kib) for pid, kib in sizes.items() if kib),
                key=lambda p: -p[2],
            )

    def _run(self) -> None:
        while True:
            self.sample()
            if self._done.wait(self.interval):
                return
