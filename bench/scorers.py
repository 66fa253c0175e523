"""The scorers, one per subprocess: `python -m bench.scorers NAME --config C.json --result R.json`.

Each scorer reads the same Parquet files with the same model and writes its timings as JSON:
`startup_s` (getting the SparkSession), `job_s` (from the moment the session exists to the end of
the last commit) and row counts. The parent (bench/run.py) measures the process's whole wall time
and the peak memory of its process tree.

- lakescore: lakescore.runner.score, the job behind `lakescore score` (validation, quarantine,
  lineage, Delta commits, run record), in a session from lakescore.session.get_spark().
- spark_udf: Parquet -> mlflow.pyfunc.spark_udf(env_manager="local") -> Delta, no validation.
- predict_batch_udf: the same with pyspark.ml.functions.predict_batch_udf.
- limit: the model's own predict over the same files in plain Python, one process per core.
- lakescore_cli: the real console script, `lakescore score DEPLOYMENT --json --run-id ID`
  (its job time comes from the run record; not in the default set).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

Config = dict[str, Any]
Result = dict[str, Any]

_CHILD_STARTED = time.perf_counter()


def _quiet() -> None:
    """What `lakescore score` does without --verbose: warnings and INFO logs off."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("mlflow", "py4j", "alembic", "urllib3", "DataFrameQueryContextLogger"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _preload() -> None:
    """Before any scorer's clock starts, the imports they all need (MLflow's pyfunc, with
    pandas, numpy and pyarrow), so no scorer's job time holds imports another's does not."""
    import mlflow.pyfunc  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pyspark.sql.functions  # noqa: F401


def _spark() -> tuple[Any, float]:
    """lakescore's own session (local[*], Delta, Arrow, the same conf), and how long it took."""
    from lakescore.session import get_spark

    started = time.perf_counter()
    spark = get_spark()
    return spark, time.perf_counter() - started


def _use_registry(config: Config) -> None:
    import mlflow

    mlflow.set_tracking_uri(config["tracking_uri"])
    mlflow.set_registry_uri(config["tracking_uri"])


def _download_model(config: Config) -> str:
    """The registered model's files on local disk (what mlflow does inside spark_udf too)."""
    import mlflow

    _use_registry(config)
    target = Path(config["output_root"]) / "model"
    target.mkdir(parents=True, exist_ok=True)
    return str(
        mlflow.artifacts.download_artifacts(artifact_uri=config["model_uri"], dst_path=str(target))
    )


def _delta_rows(spark: Any, path: str) -> int:
    """Rows the last commit to the Delta table at `path` wrote (from its metrics, no re-read)."""
    from delta.tables import DeltaTable

    last = DeltaTable.forPath(spark, path).history(1).first()
    metrics = (last["operationMetrics"] or {}) if last is not None else {}
    return int(metrics.get("numOutputRows", 0))


def _stage_io(spark: Any, rows: int) -> dict[str, Any]:
    """What Spark's tasks read: total input records over all stages, and the big stages.

    `input_passes` is input records read / input rows: how many times the job read its input.
    (Delta log reads add a handful of records.)
    """
    try:
        sc = spark.sparkContext
        gateway = sc._gateway
        store = sc._jsc.sc().statusStore()
        stages = store.stageList(None, False, False, gateway.new_array(gateway.jvm.double, 0), None)
        found: list[dict[str, Any]] = []
        for index in range(stages.size()):
            stage = stages.apply(index)
            found.append(
                {
                    "stage": int(stage.stageId()),
                    "name": str(stage.name()),
                    "tasks": int(stage.numTasks()),
                    "input_records": int(stage.inputRecords()),
                    "input_bytes": int(stage.inputBytes()),
                    "output_records": int(stage.outputRecords()),
                    "executor_run_s": round(int(stage.executorRunTime()) / 1000, 2),
                    "status": str(stage.status().toString()),
                }
            )
    except Exception as exc:  # diagnostics only: never fail a run over them
        return {"error": f"{type(exc).__name__}: {exc}"}
    found.sort(key=lambda s: s["stage"])
    total = sum(s["input_records"] for s in found)
    return {
        "input_records": total,
        "input_passes": round(total / rows, 2) if rows else None,
        "executor_run_s": round(sum(s["executor_run_s"] for s in found), 1),
        "stages": [s for s in found if s["input_records"] >= max(1, rows // 100)],
    }


def _jvm_profile(spark: Any) -> dict[str, Any]:
    """The JVM's own account of its warm-up: seconds its JIT compilers worked, classes loaded,
    and garbage-collection time (java.lang.management, read before the session stops)."""
    try:
        management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
        collectors = management.getGarbageCollectorMXBeans()
        return {
            "jit_compile_s": round(
                management.getCompilationMXBean().getTotalCompilationTime() / 1000, 1
            ),
            "classes_loaded": int(management.getClassLoadingMXBean().getTotalLoadedClassCount()),
            "gc_s": round(sum(int(c.getCollectionTime()) for c in collectors) / 1000, 1),
        }
    except Exception as exc:  # diagnostics only: never fail a run over them
        return {"error": f"{type(exc).__name__}: {exc}"}


def score_lakescore(config: Config) -> Result:
    _quiet()
    from lakescore.config import load_deployment
    from lakescore.progress import Progress
    from lakescore.runner import score

    class StageClock(Progress):
        """Progress that keeps each stage line with its time instead of printing it."""

        def __init__(self) -> None:
            super().__init__(enabled=False)
            self.marks: list[tuple[float, str]] = []

        def stage(self, message: str) -> None:
            self.marks.append((time.perf_counter(), message))

    deployment = load_deployment(config["deployment"])
    spark, startup = _spark()
    clock = StageClock()
    started = time.perf_counter()
    result = score(spark, deployment, config["run_id"], clock)
    job = time.perf_counter() - started
    record = result.record
    stages = [{"at_s": round(at - started, 2), "message": message} for at, message in clock.marks]
    io = _stage_io(spark, config["rows"])
    jvm = _jvm_profile(spark)
    spark.stop()
    return {
        "startup_s": startup,
        "job_s": job,
        "jvm": jvm,
        "rows_read": record.rows_read,
        "rows_scored": record.rows_scored,
        "rows_quarantined": record.rows_quarantined,
        "status": record.status,
        "quarantined_by_reason": record.quarantined_by_reason,
        "stage_marks": stages,
        "spark_io": io,
    }


def score_spark_udf(config: Config) -> Result:
    _quiet()
    spark, startup = _spark()
    started = time.perf_counter()
    spark_udf_job(spark, config, config["output_path"])
    job = time.perf_counter() - started
    return _spark_result(spark, config, startup, job)


def spark_udf_job(spark: Any, config: Config, output_path: str) -> None:
    """The spark_udf scorer's job: Parquet -> mlflow.pyfunc.spark_udf -> Delta at output_path."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config["batch_size"]))
    _use_registry(config)
    udf = mlflow.pyfunc.spark_udf(
        spark, config["model_uri"], result_type="long", env_manager="local"
    )
    frame = spark.read.parquet(config["input_path"])
    features = F.struct(*[F.col(c) for c in config["features"]])
    scored = frame.select(F.col(config["key"]), udf(features).alias("prediction"))
    scored.write.format("delta").mode("overwrite").save(output_path)


def score_predict_batch_udf(config: Config) -> Result:
    _quiet()
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark, startup = _spark()
    started = time.perf_counter()
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config["batch_size"]))
    model_path = _download_model(config)
    udf = predict_batch_udf(
        _make_predict_fn(model_path, list(config["features"])),
        return_type=T.LongType(),
        batch_size=config["batch_size"],
        input_tensor_shapes=None,
    )
    frame = spark.read.parquet(config["input_path"])
    scored = frame.select(
        F.col(config["key"]), udf(*[F.col(c) for c in config["features"]]).alias("prediction")
    )
    scored.write.format("delta").mode("overwrite").save(config["output_path"])
    job = time.perf_counter() - started
    return _spark_result(spark, config, startup, job)


def _make_predict_fn(model_path: str, names: list[str]) -> Callable[[], Callable[..., Any]]:
    """predict_batch_udf's factory: load the pyfunc once per worker; predict from one 1-D array
    per column, rebuilt into a pandas DataFrame with the column names the model expects."""

    def make_predict_fn() -> Callable[..., Any]:
        import mlflow.pyfunc
        import numpy as np
        import pandas as pd

        # As lakescore's workers load it: MLflow's scan of the installed packages is skipped.
        model = mlflow.pyfunc.load_model(model_path, suppress_warnings=True)

        def predict(*columns: Any) -> Any:
            return np.asarray(model.predict(pd.DataFrame(dict(zip(names, columns, strict=True)))))

        # predict_batch_udf counts the predict function's parameters to decide how to call it:
        # one per column.
        predict.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in names]
        )
        return predict

    return make_predict_fn


def _spark_result(spark: Any, config: Config, startup: float, job: float) -> Result:
    rows = _delta_rows(spark, config["output_path"])
    io = _stage_io(spark, config["rows"])
    jvm = _jvm_profile(spark)
    spark.stop()
    return {
        "startup_s": startup,
        "job_s": job,
        "jvm": jvm,
        "rows_read": config["rows"],
        "rows_scored": rows,
        "rows_quarantined": 0,
        "status": "succeeded",
        "spark_io": io,
    }


# The limit: one process per core, each reading row groups with pyarrow and calling predict.
_LIMIT_MODEL: Any = None


def _limit_task(task: tuple[str, int, Sequence[str], int]) -> int:
    import pyarrow.parquet as pq

    path, row_group, columns, batch_size = task
    table = pq.ParquetFile(path).read_row_group(row_group, columns=list(columns))
    rows = 0
    for batch in table.to_batches(max_chunksize=batch_size):
        predictions = _LIMIT_MODEL.predict(batch.to_pandas())
        rows += len(predictions)
    return rows


def score_limit(config: Config) -> Result:
    _quiet()
    import multiprocessing

    import mlflow.pyfunc
    import pyarrow.parquet as pq

    # One OpenMP thread per process, as Spark gives each of its Python workers (it sets
    # OMP_NUM_THREADS=1 in local mode): one process per core, no oversubscription. Set before
    # scikit-learn's OpenMP runtime loads.
    os.environ["OMP_NUM_THREADS"] = "1"
    started = time.perf_counter()
    model_path = _download_model(config)
    tasks = [
        (path, group, config["features"], config["batch_size"])
        for path in config["files"]
        for group in range(pq.ParquetFile(path).num_row_groups)
    ]
    processes = len(os.sched_getaffinity(0))  # the cores this process may use, as local[*]
    # Load once, then fork: every worker starts with the model in memory (copy-on-write). The
    # parent never calls predict, so no OpenMP thread pool exists yet when it forks.
    global _LIMIT_MODEL
    _LIMIT_MODEL = mlflow.pyfunc.load_model(model_path)
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_quiet) as pool:
        rows = sum(pool.imap_unordered(_limit_task, tasks, chunksize=1))
    job = time.perf_counter() - started
    return {
        "startup_s": None,
        "job_s": job,
        "rows_read": rows,
        "rows_scored": rows,
        "rows_quarantined": 0,
        "status": "succeeded",
        "processes": processes,
        "tasks": len(tasks),
    }


def score_lakescore_cli(config: Config) -> Result:
    """The console script as a user runs it; the job time comes from its run record."""
    lakescore = Path(sys.executable).with_name("lakescore")
    done = subprocess.run(
        [str(lakescore), "score", config["deployment"], "--json", "--run-id", config["run_id"]],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"lakescore score exited {done.returncode}: {done.stdout.strip()}")
    record = json.loads(done.stdout)
    started = datetime.fromisoformat(record["started_at"])
    finished = datetime.fromisoformat(record["finished_at"])
    return {
        "startup_s": None,
        # From the run record: runner.score's start to its last commit, about what job_s is for
        # the lakescore scorer (it leaves out resolving the run id and the final record write).
        "job_s": (finished - started).total_seconds(),
        "rows_read": record["rows_read"],
        "rows_scored": record["rows_scored"],
        "rows_quarantined": record["rows_quarantined"],
        "status": record["status"],
        "record_started_at": record["started_at"],
        "record_finished_at": record["finished_at"],
    }


SCORERS: dict[str, Callable[[Config], Result]] = {
    "lakescore": score_lakescore,
    "spark_udf": score_spark_udf,
    "predict_batch_udf": score_predict_batch_udf,
    "limit": score_limit,
    "lakescore_cli": score_lakescore_cli,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorers")
    parser.add_argument("scorer", choices=sorted(SCORERS))
    parser.add_argument("--config", required=True, help="JSON written by bench/run.py")
    parser.add_argument("--result", required=True, help="where to write this run's JSON")
    parser.add_argument("--run-id", default="bench-1", help="lakescore's run id")
    args = parser.parse_args(argv)
    config: Config = json.loads(Path(args.config).read_text())
    config["run_id"] = args.run_id
    # Each scorer writes under its own folder, which run.py empties before every run.
    config["output_root"] = str(Path(config["scratch"]) / args.scorer)
    config["output_path"] = str(Path(config["output_root"]) / "predictions")
    _preload()
    result = SCORERS[args.scorer](config)
    result["child_total_s"] = time.perf_counter() - _CHILD_STARTED
    Path(args.result).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
