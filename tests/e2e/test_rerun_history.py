"""A failed rerun's record replaces the one of the attempt whose rows the tables still hold:
that attempt's counts, files, reasons, Delta versions and model version stay in
`previous_attempts`, also in a runs table made before they were kept, and the failed-files rows
say which attempt recorded them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from deltalake import DeltaTable
from pyspark.sql import types as T

from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.io import FAILED_FILES_SCHEMA
from lakescore.runs import ATTEMPT_FIELDS, RUNS_SCHEMA


def run_row(path: str, run_id: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas().set_index("run_id").loc[run_id]


def test_a_failed_rerun_keeps_the_committed_attempts_account(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=200, files=2)
    deployment = load_deployment(deployment_file)
    (Path(deployment.input.path) / "broken.parquet").write_text("not parquet")
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    first = run_row(deployment.runs.path, "nightly")
    assert len(first["files_failed"]) == 1 and first["quarantined_by_reason"]

    missing = str(tmp_path / "no_input_here")
    assert main(["score", str(deployment_file), "--run-id", "nightly", "--input", missing]) == 1
    capsys.readouterr()

    rerun = run_row(deployment.runs.path, "nightly")
    assert rerun["status"] == "failed" and pd.isna(rerun["rows_scored"])
    [kept] = rerun["previous_attempts"]
    for name in ("model_version", "rows_read", "rows_scored", "rows_quarantined"):
        assert kept[name] == first[name], name
    assert (kept["output_version"], kept["quarantine_version"]) == (
        first["output_version"],
        first["quarantine_version"],
    )
    assert kept["rows_scored"] + kept["rows_quarantined"] == 200
    # Which files the kept rows came from, and why some of them are in quarantine.
    assert kept["files_read"] == first["files_read"] == 2
    assert [f["path"] for f in kept["files_failed"]] == [f["path"] for f in first["files_failed"]]
    assert dict(kept["quarantined_by_reason"]) == dict(first["quarantined_by_reason"])
    assert kept["attempt_id"] == first["attempt_id"] != rerun["attempt_id"]
    # The failed-files rows are the kept attempt's, and say so.
    failed_files = DeltaTable(deployment.quarantine.path + "_failed_files").to_pandas()
    assert [(row.attempt, row.attempt_id) for row in failed_files.itertuples()] == [
        (1, first["attempt_id"])
    ]
    assert "rows that attempt 1 of run nightly committed (it succeeded at" in rerun["error"]
    counts = f": {kept['rows_scored']:,} predictions, {kept['rows_quarantined']:,} quarantined"
    assert counts in rerun["error"]


def older_failed_files_schema() -> T.StructType:
    """FAILED_FILES_SCHEMA as it was before its rows named their attempt."""
    return T.StructType([f for f in FAILED_FILES_SCHEMA.fields if not f.name.startswith("attempt")])


def older_runs_schema() -> T.StructType:
    """RUNS_SCHEMA as it was before attempts kept their counts and versions, and before runs
    kept the model URI the deployment requested and the input's version."""
    old_fields = set(ATTEMPT_FIELDS[:6])
    fields = []
    for field in RUNS_SCHEMA.fields:
        if field.name in ("requested_model_uri", "input_version"):
            continue
        if field.name == "previous_attempts":
            element = field.dataType.elementType  # type: ignore[attr-defined]
            kept = [f for f in element.fields if f.name in old_fields]
            field = T.StructField(field.name, T.ArrayType(T.StructType(kept)))
        fields.append(field)
    return T.StructType(fields)


def test_a_runs_table_from_before_gets_the_new_fields(
    spark: Any, lakehouse: Any, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=100, files=1)
    deployment = load_deployment(deployment_file)
    (Path(deployment.input.path) / "broken.parquet").write_text("not parquet")
    started = datetime(2026, 11, 1, tzinfo=UTC)
    old = {name: None for name in older_runs_schema().fieldNames()} | {
        "run_id": "weekly",
        "deployment": deployment.name,
        "status": "succeeded",
        "started_at": started,
        "finished_at": started,
        "input": "/somewhere",
        "attempt": 2,
        "attempt_id": "a" * 32,
        "previous_attempts": [
            {
                "attempt": 1,
                "attempt_id": "b" * 32,
                "started_at": started,
                "finished_at": started,
                "status": "failed",
                "error": "boom",
            }
        ],
    }
    spark.createDataFrame([old], older_runs_schema()).write.format("delta").save(
        deployment.runs.path
    )
    failed_files = deployment.quarantine.path + "_failed_files"
    earlier_file = ("/in/old.parquet", "boom", "daily", deployment.name, started)
    spark.createDataFrame([earlier_file], older_failed_files_schema()).write.format("delta").save(
        failed_files
    )

    assert main(["score", str(deployment_file), "--run-id", "weekly"]) == 0
    capsys.readouterr()

    run = run_row(deployment.runs.path, "weekly")
    assert run["status"] == "succeeded" and run["attempt"] == 3
    first, second = run["previous_attempts"]
    assert (first["attempt"], first["status"], first["error"]) == (1, "failed", "boom")
    assert first["rows_scored"] is None and first["output_version"] is None
    assert (second["attempt"], second["status"]) == (2, "succeeded")
    assert second["model_version"] is None  # the old record had none
    assert first["files_failed"] is None and second["quarantined_by_reason"] is None
    rows = DeltaTable(failed_files).to_pandas().set_index("_run_id")
    assert tuple(rows.loc["weekly", ["attempt", "attempt_id"]]) == (3, run["attempt_id"])
    assert pd.isna(rows.loc["daily", "attempt"])  # written before the table had the column
    assert run["requested_model_uri"] == "models:/meter_risk@champion"  # a column Delta added
    assert run["input_version"] is None or pd.isna(run["input_version"])  # added; Parquet input
