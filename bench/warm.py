"""lakescore and spark_udf run several times each in one long-lived session, as from a notebook.

    .venv/bin/python bench/warm.py --rows 2000000 --runs 3   # after bench/run.py made that input

The first run of each job pays the JVM's warm-up; later runs show what a session that has
already scored pays. Each line gives the run's wall time and the CPU seconds it took, by
process (this driver, the JVM, Spark's Python workers) and the JVM's JIT compile time. Both
jobs share the session, lakescore first; outputs go to the work folder's `scratch/warm`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/warm.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procmem  # after the path above, for `python bench/warm.py`
from bench.scorers import _quiet, spark_udf_job

BENCH_DIR = Path(__file__).resolve().parent


def _cpu(spark: Any) -> dict[str, float]:
    """CPU seconds so far of this process tree, by kind, and the JVM's JIT time."""
    root = os.getpid()
    totals: dict[str, float] = {}
    for pid in procmem.tree(root):
        seconds = procmem.cpu_seconds(pid)
        if seconds is not None:
            kind = procmem.process_kind(pid, root)
            totals[kind] = totals.get(kind, 0.0) + seconds
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    totals["jit"] = management.getCompilationMXBean().getTotalCompilationTime() / 1000
    return totals


def _timed(spark: Any, label: str, job: Callable[[], Any]) -> None:
    before, started = _cpu(spark), time.perf_counter()
    job()
    wall, after = time.perf_counter() - started, _cpu(spark)
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in ("driver", "jvm", "python_workers")}
    print(
        f"  {label:<22} {wall:6.1f} s   CPU s: driver {spent['driver']:5.1f}, JVM "
        f"{spent['jvm']:5.1f}, Python workers {spent['python_workers']:5.1f}, total "
        f"{sum(spent.values()):5.1f}; JIT {after['jit'] - before['jit']:5.1f}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each job (default 2)")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "data")
    args = parser.parse_args(argv)
    config_file = args.workdir / f"config-{args.rows}.json"
    if not config_file.exists():
        parser.error(f"{config_file} is missing: run bench/run.py --rows {args.rows} first")
    config = json.loads(config_file.read_text())
    _quiet()

    from lakescore.config import load_deployment
    from lakescore.runner import score
    from lakescore.session import get_spark

    spark = get_spark()
    deployment = load_deployment(config["deployment"])
    scratch = args.workdir / "scratch" / "warm"
    shutil.rmtree(scratch, ignore_errors=True)
    deployment = dataclasses.replace(
        deployment,
        output=dataclasses.replace(deployment.output, path=str(scratch / "predictions")),
        quarantine=dataclasses.replace(deployment.quarantine, path=str(scratch / "quarantine")),
        runs=dataclasses.replace(deployment.runs, path=str(scratch / "runs")),
    )

    def spark_udf() -> None:
        spark_udf_job(spark, config, str(scratch / "spark_udf"))

    print(f"{args.runs} runs of each job in one session, {args.rows:,} rows")
    for attempt in range(1, args.runs + 1):
        _timed(spark, f"lakescore run {attempt}", lambda: score(spark, deployment))
    for attempt in range(1, args.runs + 1):
        _timed(spark, f"spark_udf run {attempt}", spark_udf)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
