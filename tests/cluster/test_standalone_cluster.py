"""lakescore on a real Spark standalone cluster: spark-submit with spark_conf/cluster.conf and the
package shipped with --py-files to machines whose Python lacks it; executors that cannot reach
the MLflow server; and a worker killed while its executor is running the model."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable as RustDeltaTable

from cluster.standalone import (
    UNREACHABLE_TRACKING_URI,
    ShippedPackage,
    StandaloneCluster,
    Submission,
    command_line,
    environment,
    kill_tree,
    submission,
)
from lakescore.config import load_deployment

pytestmark = pytest.mark.cluster

# One input file per task, so the 8 files spread over both executors (Spark would otherwise pack
# these small files into 2 partitions).
SPREAD = {"spark.sql.files.minPartitionNum": "8"}
SCORING_LINE = re.compile(r"\] validating and scoring rows with ")
COMMITTED_LINE = re.compile(r"\] committed [\d,]+ predictions")
# Executor log lines (INFO) around each task that runs Python, and the pandas UDF's in particular.
PYTHON_TASK = re.compile(
    r"Starting Python task execution - task (\d+)\.\d+ in stage (\d+) \(TID (\d+)\)"
)
MODEL_TASK = re.compile(r"ArrowEvalPython\S*: Starting Python task execution")
FINISHED_TASK = re.compile(r"Finished task \S+ in stage \S+ \(TID (\d+)\)")


def read_delta(path: str) -> pd.DataFrame:
    return RustDeltaTable(path).to_pyarrow_table().to_pandas()


def assert_every_row_once(deployment_file: Path, run_id: str, files: int) -> dict[str, Any]:
    """Each input key is in predictions or quarantine exactly once, and the run reconciles."""
    deployment = load_deployment(deployment_file)
    keys = pq.read_table(deployment.input.path, columns=["meter_id"]).column("meter_id")
    keys = keys.to_pylist()
    predictions = read_delta(deployment.output.path)
    quarantine = read_delta(deployment.quarantine.path)
    scored = predictions.loc[predictions["_run_id"] == run_id, "meter_id"]
    quarantined = quarantine.loc[quarantine["_run_id"] == run_id, "meter_id"]

    assert not scored.duplicated().any(), scored[scored.duplicated()].tolist()[:10]
    assert not quarantined.duplicated().any()
    assert set(scored).isdisjoint(set(quarantined))
    assert sorted([*scored, *quarantined]) == sorted(keys)

    runs = read_delta(deployment.runs.path).set_index("run_id")
    record = runs.loc[run_id].to_dict()
    assert record["status"] == "succeeded", record["error"]
    assert record["rows_read"] == len(keys)
    assert record["rows_read"] == record["rows_scored"] + record["rows_quarantined"]
    assert (record["rows_scored"], record["rows_quarantined"]) == (len(scored), len(quarantined))
    assert record["files_read"] == files
    assert record["model_version"] == "2"
    ours = predictions[predictions["_run_id"] == run_id]
    assert ours["_model_version"].eq("2").all() and ours["_model_name"].eq("meter_risk").all()
    assert ours["_model_uri"].eq("models:/meter_risk/2").all()
    return record


def failure_report(code: int | None, job: Submission, cluster: StandaloneCluster) -> str:
    return f"exit {code}\n{job.progress()[-6000:]}\n{cluster.logs()}"


def test_spark_submit_scores_every_row_once_across_two_workers(
    cluster: StandaloneCluster, lakescore_package: ShippedPackage, lakehouse: Any
) -> None:
    deployment_file = lakehouse(rows=4_000, files=8, scoring={"batch_size": 200})
    earlier_apps = cluster.app_dirs()
    job = submission(cluster, lakescore_package, deployment_file, "cluster-1", SPREAD)

    code = job.run()

    assert code == 0, failure_report(code, job, cluster)
    assert "run cluster-1 succeeded" in job.stdout.read_text()
    record = assert_every_row_once(deployment_file, "cluster-1", files=8)
    executors = {e["executor"]: e for e in record["executors"]}
    assert len(executors) == 2, executors  # the run record names both executors ...
    assert all(e["rows"] > 0 and e["tasks"] > 0 for e in executors.values())  # ... each scored
    assert sum(e["rows"] for e in executors.values()) == record["rows_scored"]
    apps = cluster.app_dirs() - earlier_apps
    model_tasks = [
        len(MODEL_TASK.findall(cluster.executor_log(i, apps))) for i in range(len(cluster.workers))
    ]
    assert all(model_tasks), f"model tasks per worker: {model_tasks}"  # both executors scored


def test_worker_killed_mid_scoring_still_scores_every_row_once(
    cluster: StandaloneCluster, lakescore_package: ShippedPackage, lakehouse: Any
) -> None:
    deployment_file = lakehouse(rows=20_000, files=8, scoring={"batch_size": 100})
    earlier_apps = cluster.app_dirs()
    job = submission(cluster, lakescore_package, deployment_file, "cluster-kill", SPREAD)
    process = job.start()
    try:
        task, stage = wait_for_scoring_task(cluster, 1, earlier_apps, process, job)
        python = python_workers(cluster, 1)
        python_env = environment(python[0]) if python else {}
        killed = cluster.kill_worker(1)
        killed_at = job.progress()
        code = process.wait(timeout=900)
    finally:
        kill_tree(process, grace=5.0)

    assert code == 0, failure_report(code, job, cluster)
    assert python, "no Python worker under the executor"
    assert len(killed) >= 3  # the worker JVM, its executor JVM and the executor's Python workers
    # The executor's Python ran the model with a tracking URI where nothing listens.
    assert python_env.get("MLFLOW_TRACKING_URI") == UNREACHABLE_TRACKING_URI
    # The kill landed after scoring started and before the predictions were committed ...
    assert SCORING_LINE.search(killed_at) and not COMMITTED_LINE.search(killed_at)
    # ... while that executor was running a scoring task, which the other executor ran again.
    assert "Lost executor" in job.err_text()
    survivor = cluster.executor_log(0, cluster.app_dirs() - earlier_apps)
    retried = rf"Running task {task}\.[1-9]\d* in stage {stage}\.\d+ "
    assert re.search(retried, survivor), failure_report(code, job, cluster)
    assert_every_row_once(deployment_file, "cluster-kill", files=8)


def python_workers(cluster: StandaloneCluster, index: int, timeout: float = 15.0) -> list[int]:
    """The Python daemon and workers under worker `index`. The executor logs that a Python task
    starts before it asks the daemon for a worker, so they may take a moment to appear."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in cluster.worker_processes(index) if "pyspark.daemon" in command_line(p)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def wait_for_scoring_task(
    cluster: StandaloneCluster,
    index: int,
    earlier_apps: set[Path],
    process: subprocess.Popen[bytes],
    job: Submission,
    timeout: float = 600.0,
) -> tuple[str, str]:
    """Wait until worker `index`'s executor is running a scoring task; its (partition, stage).

    Between lakescore's "scoring" and "committed ... predictions" lines the only Python tasks are
    the model's, so a Python task the executor started and has not finished is a scoring task.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the job ended before scoring reached worker {index}:\n{job.progress()}")
        progress = job.progress()
        if SCORING_LINE.search(progress) and not COMMITTED_LINE.search(progress):
            log = cluster.executor_log(index, cluster.app_dirs() - earlier_apps)
            finished = set(FINISHED_TASK.findall(log))
            running = [(t, s) for t, s, tid in PYTHON_TASK.findall(log) if tid not in finished]
            if running:
                return running[-1]
        elif COMMITTED_LINE.search(progress):
            pytest.fail(f"scoring finished before it reached worker {index}:\n{progress}")
        time.sleep(0.1)
    pytest.fail(f"scoring did not reach worker {index} within {timeout:.0f}s")
