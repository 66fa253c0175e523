"""The real entry points in their own processes: the `lakescore` console script, `spark-submit
jobs/score.py` with spark_conf/local.conf, and the Databricks-format notebook."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable as RustDeltaTable

from lakescore.config import load_deployment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.e2e
def test_console_script_scores_and_keeps_stdout_for_json(lakehouse: Any, tmp_path: Path) -> None:
    deployment_file = lakehouse(rows=200, files=2)
    done = run(
        [str(BIN / "lakescore"), "score", str(deployment_file), "--json", "--run-id", "cli-1"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded" and record["run_id"] == "cli-1"
    assert record["rows_read"] == 200 == record["rows_scored"] + record["rows_quarantined"]
    assert "Traceback" not in done.stderr
    assert "resolving dependencies" not in done.stderr  # Ivy's report is kept off the terminal
    assert "[lakescore" not in done.stderr  # --json: no stage lines


@pytest.mark.e2e
def test_console_script_error_is_one_sentence_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {uri: models:/m/1}\n")
    done = run([str(BIN / "lakescore"), "score", str(bad)], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("lakescore: error:")
    assert "missing required key input" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("overrides", "extra", "exit_code", "said"),
    [
        ({"limits": {"max_error_rows": 0}}, [], 3, "more than limits.max_error_rows (0)"),
        ({}, ["--input", "/no/such/input"], 1, "Input /no/such/input does not exist"),
    ],
    ids=["aborted", "failed"],
)
def test_console_script_exit_codes_of_an_aborted_and_a_failed_run(
    lakehouse: Any,
    tmp_path: Path,
    overrides: dict[str, Any],
    extra: list[str],
    exit_code: int,
    said: str,
) -> None:
    """What a scheduler sees from the process: 3 (retry later, or look at the quarantine) or 1,
    with one line naming why, and the run recorded."""
    deployment_file = lakehouse(rows=100, files=1, **overrides)
    done = run(
        [str(BIN / "lakescore"), "score", str(deployment_file), "--run-id", "exits", *extra],
        tmp_path,
    )
    assert done.returncode == exit_code, done.stderr[-3000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("lakescore: error:")]
    assert said in line and "Traceback" not in done.stderr
    run_record = RustDeltaTable(load_deployment(deployment_file).runs.path).to_pandas()
    assert list(run_record["status"]) == ["aborted" if exit_code == 3 else "failed"]
    # One line per stage on stderr, timed from the start, in the order the run reaches them.
    stages = [
        line.split("] ", 1)[1]
        for line in done.stderr.splitlines()
        if re.match(r"\[lakescore +\d+\.\ds\] ", line)
    ]
    expected = ["run exits of meter-risk-test started", "resolving model "]
    if exit_code == 3:
        expected += ["model pinned to ", "reading 1 parquet file(s) from ", "validated 100 rows: "]
    at = [[i for i, s in enumerate(stages) if s.startswith(e)] for e in expected]
    assert all(len(places) == 1 for places in at), stages  # each stage once
    assert [places[0] for places in at] == sorted(places[0] for places in at), stages


@pytest.mark.e2e
def test_a_failing_task_is_one_sentence_not_three_jvm_stacks(
    lakehouse: Any, tmp_path: Path
) -> None:
    """A rule that raises on a row fails its task: Spark's executor, scheduler and writer each
    log the JVM stack; without --verbose the operator gets the run's one sentence."""
    rules = [{"name": "region_code", "expr": "cast(region AS INT) > 0"}]  # raises under ANSI
    deployment_file = lakehouse(rows=50, files=1, rules=rules)
    done = run([str(BIN / "lakescore"), "score", str(deployment_file)], tmp_path)
    assert done.returncode == 2
    assert "Rule region_code (cast(region AS INT) > 0) raised an error" in done.stderr
    assert "\tat org.apache" not in done.stderr
    assert len(done.stderr.splitlines()) < 30, done.stderr


@pytest.mark.e2e
def test_spark_submit_runs_the_job_on_a_delta_input(lakehouse: Any, tmp_path: Path) -> None:
    deployment_file = lakehouse(rows=200, files=2, fmt="delta")
    done = run(
        [
            str(BIN / "spark-submit"),
            "--properties-file",
            str(ROOT / "spark_conf" / "local.conf"),
            str(ROOT / "jobs" / "score.py"),
            str(deployment_file),
            "--run-id",
            "submitted",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run submitted succeeded" in done.stdout
    deployment = load_deployment(deployment_file)
    predictions = RustDeltaTable(deployment.output.path).to_pyarrow_table().to_pandas()
    runs = RustDeltaTable(deployment.runs.path).to_pyarrow_table().to_pandas()
    assert predictions["_run_id"].eq("submitted").all()
    assert predictions["_source_table_version"].eq(0).all()
    run_row = runs.set_index("run_id").loc["submitted"]
    assert run_row["status"] == "succeeded"
    assert run_row["rows_read"] == 200 == run_row["rows_scored"] + run_row["rows_quarantined"]


@pytest.mark.e2e
def test_spark_submit_refuses_catalog_tables_in_an_in_memory_catalog(
    lakehouse: Any, tmp_path: Path
) -> None:
    """spark-submit with --properties-file skips the cluster's spark-defaults.conf, and with it
    the Hive metastore: the in-memory catalog would forget the tables when the job ends."""
    deployment_file = lakehouse(rows=50, files=1)
    data = yaml.safe_load(deployment_file.read_text())
    for key in ("output", "quarantine", "runs"):
        data[key] = {"table": f"submitted.{key}"}
    deployment_file.write_text(yaml.safe_dump(data))
    submit = [
        str(BIN / "spark-submit"),
        "--properties-file",
        str(ROOT / "spark_conf" / "local.conf"),
        "--conf",
        f"spark.sql.warehouse.dir={tmp_path / 'warehouse'}",
    ]
    job = [str(ROOT / "jobs" / "score.py"), str(deployment_file), "--run-id", "by-name"]

    refused = run([*submit, *job], tmp_path)

    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "catalog is in-memory (spark.sql.catalogImplementation=in-memory)" in refused.stdout
    assert not (tmp_path / "warehouse").exists()  # no table was written

    with_hive = run([*submit, "--conf", "spark.sql.catalogImplementation=hive", *job], tmp_path)

    assert with_hive.returncode == 0, with_hive.stdout[-3000:] + with_hive.stderr[-3000:]
    assert "run by-name succeeded" in with_hive.stdout
    runs = RustDeltaTable(str(tmp_path / "warehouse" / "submitted.db" / "runs"))
    assert runs.to_pyarrow_table().column("status").to_pylist() == ["succeeded"]


def test_notebook_runs_top_to_bottom_outside_databricks(
    lakehouse: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=120, files=2)
    monkeypatch.setenv("LAKESCORE_DEPLOYMENT", str(deployment_file))
    monkeypatch.setenv("LAKESCORE_RUN_ID", "from-notebook")
    runpy.run_path(str(ROOT / "notebooks" / "score.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "run from-notebook: succeeded, read 120" in out
    runs = RustDeltaTable(load_deployment(deployment_file).runs.path).to_pyarrow_table()
    assert runs.column("run_id").to_pylist() == ["from-notebook"]


@pytest.mark.e2e
def test_a_local_session_keeps_the_jars_options_and_extensions_of_spark_defaults(
    tmp_path: Path,
) -> None:
    """lakescore's own session set spark.jars, the driver's JVM options and the SQL extensions,
    and so replaced spark-defaults.conf's (hadoop-aws for s3a inputs, a proxy option): each is
    now the file's, then lakescore's."""
    import zipfile

    jar = tmp_path / "extra.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(
        "# the user's\n"
        f"spark.jars  {jar}\n"
        "spark.driver.extraJavaOptions=-Dlakescore.test.proxy=on\n"
        "spark.sql.extensions : org.example.Extensions\n"
    )
    probe = (
        "from lakescore.session import get_spark\n"
        "spark = get_spark()\n"
        "conf = spark.sparkContext.getConf()\n"
        "print(conf.get('spark.jars'))\n"
        "print(spark.sparkContext._jvm.java.lang.System.getProperty('lakescore.test.proxy'))\n"
        "print(spark.sparkContext._jvm.java.lang.System.getProperty('log4j2.configurationFile'))\n"
        "print(conf.get('spark.sql.extensions'))\n"
    )
    env = {**os.environ, "SPARK_CONF_DIR": str(conf), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    jars, proxy, log_config, extensions = done.stdout.splitlines()[-4:]
    assert jars.split(",")[0].endswith(str(jar)) and "delta-spark" in jars
    assert proxy == "on"
    assert log_config.endswith("lakescore/log4j2.properties")  # lakescore's quiet logging too
    assert extensions == "org.example.Extensions,io.delta.sql.DeltaSparkSessionExtension"
