"""Catalog tables (`table: schema.name`): read and written by name, created with column
comments and table properties, and kept in a local metastore across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from lakescore import __version__
from lakescore.cli import main
from lakescore.config import load_deployment

BIN = Path(sys.executable).parent


def catalog_deployment(deployment_file: Path, schema: str, input_table: str | None) -> None:
    data = yaml.safe_load(deployment_file.read_text())
    if input_table:
        data["input"] = {
            "format": "delta",
            "table": input_table,
            "key": "meter_id",
            "passthrough": ["meter_id", "region"],
        }
    for key in ("output", "quarantine", "runs"):
        data[key] = {"table": f"{schema}.{key}"}
    deployment_file.write_text(yaml.safe_dump(data))


def test_catalog_tables_are_read_and_written_by_name(
    lakehouse: Any, spark: Any, tmp_path: Path, capsys: Any
) -> None:
    schema = f"lakescore_{uuid.uuid4().hex[:8]}"
    deployment_file = lakehouse(rows=200, files=2, fmt="delta")
    input_path = load_deployment(deployment_file).input.path
    spark.sql(f"CREATE SCHEMA {schema} LOCATION '{tmp_path / 'catalog'}'")
    spark.sql(f"CREATE TABLE {schema}.meters USING DELTA LOCATION '{input_path}'")
    catalog_deployment(deployment_file, schema, f"{schema}.meters")

    assert main(["score", str(deployment_file), "--run-id", "by-name"]) == 0
    assert main(["score", str(deployment_file), "--run-id", "by-name"]) == 0  # rerun
    capsys.readouterr()

    scored = spark.sql(f"SELECT * FROM {schema}.output")
    quarantined = spark.table(f"{schema}.quarantine")
    run = spark.table(f"{schema}.runs").where("run_id = 'by-name'").first()
    assert run["status"] == "succeeded" and run["attempt"] == 2
    assert run["input"] == f"{schema}.meters"  # by name, as the deployment gives it
    assert scored.count() == run["rows_scored"] and quarantined.count() == run["rows_quarantined"]
    assert run["rows_read"] == 200 == scored.count() + quarantined.count()
    assert scored.select("meter_id").distinct().count() == scored.count()
    assert {r[0] for r in scored.select("_source_table_version").distinct().collect()} == {0}
    for table in ("output", "quarantine", "runs"):
        properties = {
            r["key"]: r["value"]
            for r in spark.sql(f"SHOW TBLPROPERTIES {schema}.{table}").collect()
        }
        assert properties["lakescore.deployment"] == "meter-risk-test"
        assert properties["lakescore.version"] == __version__
    comments = {
        r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {schema}.output").collect()
    }
    assert comments["_run_id"] == "lakescore run that wrote this row"
    assert comments["_source_file"] == "input file the row was read from"

    # The input table is gone (dropped, renamed): its runs can still be looked at.
    spark.sql(f"DROP TABLE {schema}.meters")
    assert main(["runs", "list", str(deployment_file), "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["by-name"]
    assert main(["runs", "show", str(deployment_file), "by-name", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_read"] == 200
    assert main(["runs", "show", str(deployment_file), "no-such-run"]) == 1
    assert f"not in the runs table {schema}.runs." in capsys.readouterr().err
    assert main(["score", str(deployment_file), "--run-id", "gone", "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"]["error"] == f"Input table {schema}.meters does not exist."
    gone = spark.table(f"{schema}.runs").where("run_id = 'gone'").first()
    assert (gone["status"], gone["input"]) == ("failed", f"{schema}.meters")


def test_a_local_metastore_keeps_catalog_tables_across_processes(
    lakehouse: Any, tmp_path: Path
) -> None:
    deployment_file = lakehouse(rows=100, files=1)
    catalog_deployment(deployment_file, "meter_scores", None)
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "LAKESCORE_WAREHOUSE_DIR": str(tmp_path / "metastore"),
    }

    def lakescore(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "lakescore"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    scored = lakescore("score", str(deployment_file), "--run-id", "persisted", "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    listed = lakescore("runs", "list", str(deployment_file), "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    runs = json.loads(listed.stdout)
    assert [(r["run_id"], r["status"]) for r in runs] == [("persisted", "succeeded")]
    assert (tmp_path / "metastore" / "metastore_db").is_dir()
    assert list((tmp_path / "metastore" / "warehouse").glob("meter_scores.db/output/_delta_log"))
