"""Where a lakescore run's time goes, step by step, in one Spark session.

    .venv/bin/python bench/breakdown.py --rows 2000000     # after bench/run.py made that input

Builds the same frames as `lakescore.runner` (run record, read, validate, score into staging,
count, commit) and times each step on its own, each step run twice. The second timing is the
step's warm cost; the first shows what the step costs a cold JVM (its JVM CPU time and the time
the JIT compilers spent). "noop" steps run the whole plan but write nothing (Spark's `noop`
format), so the difference between two consecutive steps is the cost of what the later one
adds. Model resolution and listing show in bench/run.py's stage lines.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

if __package__ in (None, ""):  # run as `python bench/breakdown.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procmem  # after the path above, for `python bench/breakdown.py`

BENCH_DIR = Path(__file__).resolve().parent


class _JvmClock:
    """The JVM's CPU time and its JIT compilers' time so far: what a step costs a cold JVM."""

    def __init__(self, spark: Any) -> None:
        jvm = spark.sparkContext._jvm
        self._management = jvm.java.lang.management.ManagementFactory
        self._pid = int(jvm.java.lang.ProcessHandle.current().pid())

    def read(self) -> tuple[float, float]:
        jit = self._management.getCompilationMXBean().getTotalCompilationTime() / 1000
        return procmem.cpu_seconds(self._pid) or 0.0, jit


def _timed(
    label: str, step: Callable[[], Any], results: list[tuple[str, float]], clock: _JvmClock
) -> None:
    """Run the step twice: the first run compiles, loads classes and starts Python workers (its
    JVM CPU and JIT time are shown); the second, warm, is the step's own cost."""
    cpu, jit = clock.read()
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    cpu_after, jit_after = clock.read()
    started = time.perf_counter()
    step()
    results.append((label, time.perf_counter() - started))
    print(
        f"  {label:<52} {results[-1][1]:6.2f} s   {first:6.2f} s   {cpu_after - cpu:5.1f} s"
        f"  {jit_after - jit:5.1f} s",
        flush=True,
    )


def _null_scores(outputs: Sequence[Any]) -> Callable[[Any], Any]:
    """A pandas UDF with the scoring UDF's input and output but no model: Arrow transfer only."""
    from pyspark.sql.pandas.functions import pandas_udf

    from lakescore.columns import EXECUTOR, SCORE_ERROR, TASK
    from lakescore.scoring import output_struct

    names = [o.name for o in outputs]

    def transfer(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            result = pd.DataFrame({n: 0 for n in names}, index=batch.index)
            yield result.assign(**{SCORE_ERROR: None, EXECUTOR: "x", TASK: 0})

    return pandas_udf(transfer, output_struct(outputs))  # type: ignore[call-overload,no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "data")
    args = parser.parse_args(argv)
    deployment_file = args.workdir / f"deployment-{args.rows}.yaml"
    if not deployment_file.exists():
        parser.error(f"{deployment_file} is missing: run bench/run.py --rows {args.rows} first")

    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from lakescore import pipeline
    from lakescore.config import load_deployment
    from lakescore.io import ensure_delta_table, read_input, replace_run_rows
    from lakescore.model import resolve_model
    from lakescore.model_shipping import ship_model
    from lakescore.runs import RUNNING, RunRecord, write_run
    from lakescore.scoring import scoring_udf
    from lakescore.session import get_spark

    spark = get_spark()
    deployment = load_deployment(deployment_file)
    scratch = Path(tempfile.mkdtemp(prefix="lakescore-profile-"))
    try:
        model = resolve_model(
            deployment.model.uri, deployment.model.tracking_uri, str(scratch / "model")
        )
        data = read_input(spark, deployment.input)
        inputs = pipeline.model_inputs(model, data.frame, deployment.input.key)
        carried = pipeline.carried_columns(deployment.input.key, deployment.input.passthrough)
        validated = pipeline.validate(data.frame, inputs, deployment.rules)
        stamp = pipeline.RunStamp("profile", datetime.now(UTC), model)
        spark.conf.set(
            "spark.sql.execution.arrow.maxRecordsPerBatch", str(deployment.scoring.batch_size)
        )
        udf = scoring_udf(
            ship_model(spark, model.local_path),
            inputs,
            model.outputs,
            model.describe(),
            pipeline.VALID,
        )

        def staged(score: Callable[[Any], Any]) -> DataFrame:
            return pipeline.staged(validated, inputs, model.outputs, score, carried, False, ())

        def noop(frame: DataFrame) -> Callable[[], None]:
            return lambda: frame.write.format("noop").mode("overwrite").save()

        staging = str(scratch / "staging")
        results: list[tuple[str, float]] = []
        clock = _JvmClock(spark)
        print(
            f"lakescore profile: {args.rows:,} rows. Each step runs twice in one session: 'warm'"
            " is the second run;\n'first run' is the first, with the JVM CPU and JIT compile "
            "time it took (the JVM is cold at step 0).\n"
            f"  {'':<52} {'warm':>8} {'first run':>10} {'JVM CPU':>8} {'JIT':>7}"
        )
        record = RunRecord("profile", deployment.name, RUNNING, stamp.at, deployment.input.path)
        _timed(
            "0 a run record (the JVM's first Delta write)",
            lambda: write_run(spark, str(scratch / "runs"), record),
            results,
            clock,
        )
        _timed("1 read the input (noop)", noop(data.frame), results, clock)
        _timed("2 + validate every row (noop)", noop(validated.frame), results, clock)
        transfer_only = staged(_null_scores(model.outputs))
        _timed("3 + Arrow to Python and back, no model (noop)", noop(transfer_only), results, clock)
        _timed("4 + the model on valid rows (noop)", noop(staged(udf)), results, clock)
        _timed(
            "5 + write the staging Parquet (the run's one pass)",
            lambda: staged(udf).write.mode("overwrite").parquet(staging),
            results,
            clock,
        )
        rows = spark.read.parquet(staging)
        _timed(
            "6 counts from staging (summary, checks)",
            lambda: (
                pipeline.staged_summary(rows).collect(),
                pipeline.check_failures(rows).collect(),
            ),
            results,
            clock,
        )
        stats = ",".join(pipeline.default_stats_columns(model.outputs))
        commits = {
            "predictions": (
                pipeline.predictions(rows, stamp),
                {"delta.dataSkippingStatsColumns": stats},
            ),
            "predictions, statistics on every column": (pipeline.predictions(rows, stamp), {}),
            "quarantine": (pipeline.quarantine(rows, validated.input_columns, stamp), {}),
        }
        for table, (frame, properties) in commits.items():
            path = str(scratch / f"table-{len(results)}")
            ensure_delta_table(spark, path, frame.schema, {}, properties)
            run_ids = iter(("run-1", "run-2"))  # a new run each time, as a scheduled run commits

            def commit(frame: DataFrame = frame, path: str = path, ids: Any = run_ids) -> None:
                run_id = next(ids)
                rows = frame.withColumn("_run_id", F.lit(run_id))
                replace_run_rows(rows, path, "_run_id", run_id, {"run": run_id})

            _timed(f"7 commit {table}", commit, results, clock)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
