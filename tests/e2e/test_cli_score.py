"""The `lakescore` command end to end, in-process on the shared session: tables, counts, lineage,
alias pinning, limits, reruns, and read-back with a reader that is not Spark (delta-rs)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deltalake import DeltaTable as RustDeltaTable
from lakehouses import sharing_runs_table

from lakescore import __version__
from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.runs import RUNS_SCHEMA

PREDICTION_COLUMNS = [
    "meter_id",
    "region",
    "risk_score",
    "high_risk",
    "_run_id",
    "_model_name",
    "_model_version",
    "_model_uri",
    "_scored_at",
    "_source_file",
    "_source_file_modified_at",
]
QUARANTINE_LINEAGE = ["_errors", "_run_id", "_quarantined_at", "_source_file", "_model_version"]
INPUT_COLUMNS = ["meter_id", "region", "tariff", "kwh_7d", "kwh_30d", "peak_ratio", "temp_c"]


def score_json(deployment: Path, capsys: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["score", str(deployment), "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def rust_table(path: str) -> Any:
    return RustDeltaTable(path).to_pyarrow_table().to_pandas()


def reasons_in(quarantine: pd.DataFrame) -> Counter[str]:
    """Quarantined rows per check, keyed as the run record keys them (`rule` or
    `rule:column`), counted from the rows' `_errors`."""
    counted: Counter[str] = Counter()
    for errors in quarantine["_errors"]:
        counted.update({f"{e['rule']}:{e['column']}" if e["column"] else e["rule"] for e in errors})
    return counted


def run_ids_committed(path: str) -> list[tuple[str, ...] | None]:
    """The run id, attempt id and attempt start in each commit's userMetadata, oldest first,
    without the creating commit."""
    history = sorted(RustDeltaTable(path).history(), key=lambda h: h["version"])
    names = ("lakescore_run_id", "attempt_id", "attempt_started_at")
    found = [json.loads(h["userMetadata"]) if h.get("userMetadata") else None for h in history]
    return [
        tuple(metadata.get(name) for name in names) if metadata else None
        for h, metadata in zip(history, found, strict=True)
        if h["version"] > 0
    ]


def test_parquet_run_writes_three_tables_that_delta_rs_reads(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=600, files=3)
    deployment = load_deployment(deployment_file)
    code, record = score_json(deployment_file, capsys, "--run-id", "parquet-1")

    assert code == 0
    assert record["status"] == "succeeded"
    assert record["rows_read"] == 600
    assert record["rows_read"] == record["rows_scored"] + record["rows_quarantined"]
    assert record["rows_quarantined"] > 0 and record["files_read"] == 3
    assert record["model_version"] == "2" and record["model_uri"] == "models:/meter_risk/2"
    assert sum(e["rows"] for e in record["executors"]) == record["rows_scored"]
    assert all(e["executor"].endswith("/driver") and e["tasks"] >= 1 for e in record["executors"])

    predictions = rust_table(deployment.output.path)
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert len(predictions) == record["rows_scored"]
    assert predictions["_run_id"].eq("parquet-1").all()
    assert predictions["_model_version"].eq("2").all()
    assert predictions["_model_name"].eq("meter_risk").all()
    assert predictions["_source_file"].str.endswith(".parquet").all()
    assert predictions["_source_file"].nunique() == 3
    assert predictions["_scored_at"].nunique() == 1
    assert predictions["risk_score"].between(0, 1).all()

    quarantine = rust_table(deployment.quarantine.path)
    assert list(quarantine.columns) == INPUT_COLUMNS + QUARANTINE_LINEAGE
    assert len(quarantine) == record["rows_quarantined"]
    assert all(len(errors) >= 1 for errors in quarantine["_errors"])
    reasons = reasons_in(quarantine)
    assert {"required_null", "nan", "infinite", "usage_non_negative"} <= {
        reason.split(":")[0] for reason in reasons
    }
    assert record["quarantined_by_reason"] == dict(reasons)
    assert quarantine["_source_file"].str.endswith(".parquet").all()
    assert (
        quarantine["_run_id"].eq("parquet-1").all() and quarantine["_model_version"].eq("2").all()
    )

    keys = set(predictions["meter_id"]) | set(quarantine["meter_id"])
    assert len(keys) == 600 and not set(predictions["meter_id"]) & set(quarantine["meter_id"])

    runs = rust_table(deployment.runs.path)
    assert list(runs.columns) == RUNS_SCHEMA.fieldNames()
    run = runs.iloc[0]
    assert (run["run_id"], run["status"], run["deployment"]) == (
        "parquet-1",
        "succeeded",
        "meter-risk-test",
    )
    assert (run["model_name"], run["lakescore_version"]) == ("meter_risk", __version__)
    assert run["input"] == deployment.input.path and run["started_at"] <= run["finished_at"]
    assert run["rows_read"] == 600 and run["attempt"] == 1
    # The one run's commits, each carrying its id and attempt: predictions and quarantine
    # once, the runs table at its start and at its end.
    attempt = (run["attempt_id"], record["started_at"])
    for path in (deployment.output.path, deployment.quarantine.path):
        assert run_ids_committed(path) == [("parquet-1", *attempt)]
    assert run_ids_committed(deployment.runs.path) == [("parquet-1", *attempt)] * 2


def test_delta_input_sets_source_table_version(lakehouse: Any, capsys: Any, spark: Any) -> None:
    """Each prediction and the run record say which version of the Delta input was read."""
    deployment_file = lakehouse(rows=200, files=2, fmt="delta")
    deployment = load_deployment(deployment_file)
    # Version 1 changes no rows.
    spark.sql(f"ALTER TABLE delta.`{deployment.input.path}` SET TBLPROPERTIES ('team' = 'meters')")
    code, record = score_json(deployment_file, capsys)
    predictions = rust_table(deployment.output.path)
    assert code == 0
    assert list(predictions.columns) == [*PREDICTION_COLUMNS, "_source_table_version"]
    assert predictions["_source_table_version"].eq(1).all()
    assert record["rows_read"] == 200 == record["rows_scored"] + record["rows_quarantined"]
    assert record["input_version"] == 1
    assert list(rust_table(deployment.runs.path)["input_version"]) == [1]


def test_alias_is_pinned_to_a_version_per_run(lakehouse: Any, capsys: Any, registry: Any) -> None:
    import mlflow

    client = mlflow.MlflowClient(
        tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri
    )
    deployment_file = lakehouse(rows=100, files=1)
    deployment = load_deployment(deployment_file)
    client.set_registered_model_alias("meter_risk", "champion", "1")
    try:
        assert score_json(deployment_file, capsys, "--run-id", "on-v1")[0] == 0
    finally:
        client.set_registered_model_alias("meter_risk", "champion", "2")
    assert score_json(deployment_file, capsys, "--run-id", "on-v2")[0] == 0

    predictions = rust_table(deployment.output.path)
    versions = predictions.groupby("_run_id")["_model_version"].unique().to_dict()
    assert {k: list(v) for k, v in versions.items()} == {"on-v1": ["1"], "on-v2": ["2"]}
    assert set(predictions["_model_uri"]) == {"models:/meter_risk/1", "models:/meter_risk/2"}
    runs = rust_table(deployment.runs.path).set_index("run_id")
    assert runs.loc["on-v1", "model_uri"] == "models:/meter_risk/1"
    assert set(runs["requested_model_uri"]) == {"models:/meter_risk@champion"}  # which alias
    commits = [
        json.loads(h["userMetadata"])
        for h in RustDeltaTable(deployment.output.path).history()
        if "requested_model_uri" in (h.get("userMetadata") or "")
    ]
    assert {(c["model_uri"], c["requested_model_uri"]) for c in commits} == {
        ("models:/meter_risk/1", "models:/meter_risk@champion"),
        ("models:/meter_risk/2", "models:/meter_risk@champion"),
    }


def test_rerunning_a_run_id_replaces_its_rows_in_every_table(lakehouse: Any, capsys: Any) -> None:
    """The rerun's rows replace the first attempt's, and another run's rows stay as they were."""
    deployment_file = lakehouse(rows=300, files=2)
    deployment = load_deployment(deployment_file)
    assert score_json(deployment_file, capsys, "--run-id", "other")[0] == 0
    others = {
        path: rust_table(path).query("_run_id == 'other'")
        for path in (deployment.output.path, deployment.quarantine.path)
    }
    first = score_json(deployment_file, capsys, "--run-id", "again")[1]
    first_scored_at = rust_table(deployment.output.path).query("_run_id == 'again'")["_scored_at"]
    second = score_json(deployment_file, capsys, "--run-id", "again")[1]
    assert first["rows_scored"] == second["rows_scored"] and second["attempt"] == 2

    predictions = rust_table(deployment.output.path)
    quarantine = rust_table(deployment.quarantine.path)
    runs = rust_table(deployment.runs.path)
    again = predictions.query("_run_id == 'again'")
    assert len(again) == second["rows_scored"] and again["meter_id"].is_unique
    assert again["_scored_at"].nunique() == 1  # the second attempt's, not the first's
    assert again["_scored_at"].iloc[0] > first_scored_at.max()
    assert len(quarantine.query("_run_id == 'again'")) == second["rows_quarantined"]
    assert quarantine.query("_run_id == 'again'")["meter_id"].is_unique
    assert sorted(runs["run_id"]) == ["again", "other"]
    assert runs.set_index("run_id").loc["again", "attempt"] == 2
    for path, table in (
        (deployment.output.path, predictions),
        (deployment.quarantine.path, quarantine),
    ):
        kept = table.query("_run_id == 'other'")
        pd.testing.assert_frame_equal(
            kept.sort_values("meter_id").reset_index(drop=True),
            others[path].sort_values("meter_id").reset_index(drop=True),
        )


def test_limits_abort_with_nothing_committed_but_quarantine_and_record(
    lakehouse: Any, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=300, files=2, limits={"max_error_rows": 0})
    deployment = load_deployment(deployment_file)
    code = main(["score", str(deployment_file), "--run-id", "too-bad"])
    captured = capsys.readouterr()

    assert code == 3
    assert "max_error_rows" in captured.err and "Traceback" not in captured.err
    assert not Path(deployment.output.path, "_delta_log").exists()
    quarantine = rust_table(deployment.quarantine.path)
    runs = rust_table(deployment.runs.path)
    assert len(quarantine) > 0
    run = runs.iloc[0]
    assert run["status"] == "aborted" and "no predictions were committed" in run["error"]
    assert run["rows_quarantined"] == len(quarantine) and run["rows_scored"] == 0


def test_aborted_rerun_removes_an_earlier_attempts_predictions(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=200, files=2)
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", "flip"]) == 0
    strict = lakehouse(rows=200, files=2, limits={"max_error_fraction": 0.0})
    assert main(["score", str(strict), "--run-id", "flip"]) == 3
    err = capsys.readouterr().err
    assert len(rust_table(deployment.output.path)) == 0
    # The record names the version that took the earlier predictions away, and so does the error.
    run = rust_table(deployment.runs.path).iloc[0]
    assert run["output_version"] == RustDeltaTable(deployment.output.path).version()
    removed = "removed the predictions an earlier attempt of run flip had committed (predictions "
    assert f"{removed}version {run['output_version']})" in run["error"]
    assert removed in " ".join(err.split())


def test_a_rerun_after_optimize_counts_only_its_own_rows(
    lakehouse: Any, capsys: Any, spark: Any
) -> None:
    """After OPTIMIZE, a run's rows share files with other runs'. Replacing them rewrites those
    files, and Delta counts the other runs' rows it copies as output: the rerun was recorded as
    failed ("counts do not reconcile", its commits kept) with twice its rows."""
    deployment_file = lakehouse(rows=200, files=2)
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", "r0"]) == 0
    capsys.readouterr()
    first = score_json(deployment_file, capsys, "--run-id", "r1")[1]
    for path in (deployment.output.path, deployment.quarantine.path):
        spark.sql(f"OPTIMIZE delta.`{path}`")
    r0_rows = {
        path: sorted(rust_table(path).query("_run_id == 'r0'")["meter_id"])
        for path in (deployment.output.path, deployment.quarantine.path)
    }
    code, again = score_json(deployment_file, capsys, "--run-id", "r1")
    assert code == 0 and again["status"] == "succeeded"
    assert (again["rows_scored"], again["rows_quarantined"]) == (
        first["rows_scored"],
        first["rows_quarantined"],
    )
    for path, keys in r0_rows.items():  # the copied rows of r0 are all there, once
        assert keys and sorted(rust_table(path).query("_run_id == 'r0'")["meter_id"]) == keys


def test_warn_rules_are_counted_and_rows_still_scored(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(
        rows=300,
        files=1,
        bad=False,
        rules=[{"name": "small", "expr": "kwh_7d < 60", "action": "warn"}],
    )
    code, record = score_json(deployment_file, capsys)
    assert code == 0
    assert record["rows_scored"] == 300 and record["rows_quarantined"] == 0
    inputs = pd.read_parquet(load_deployment(deployment_file).input.path)
    breaking = int((inputs["kwh_7d"] >= 60).sum())
    assert 0 < breaking < 300
    assert record["warnings_by_rule"] == {"small": breaking}


def test_sklearn_flavor_scores_with_one_prediction_column(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=150, files=1, bad=False, model="models:/sk_meter/1")
    code, record = score_json(deployment_file, capsys)
    predictions = rust_table(load_deployment(deployment_file).output.path)
    assert code == 0 and record["rows_scored"] == 150
    assert "prediction" in predictions.columns
    assert set(predictions["prediction"]) <= {0, 1}


@pytest.mark.parametrize("verb", [["runs", "list"], ["deployment", "show"]])
def test_show_and_list_print_json(lakehouse: Any, capsys: Any, verb: list[str]) -> None:
    deployment_file = lakehouse(rows=50, files=1)
    assert main(["score", str(deployment_file), "--run-id", "listed", "--json"]) == 0
    capsys.readouterr()
    assert main([*verb, str(deployment_file), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    if verb[0] == "runs":
        assert [r["run_id"] for r in shown] == ["listed"]
    else:
        assert shown["model"]["pinned_uri"] == "models:/meter_risk/2"
        assert [c["name"] for c in shown["model"]["outputs"]] == ["risk_score", "high_risk"]
        assert {c["name"] for c in shown["model"]["inputs"]} == {
            "kwh_7d",
            "kwh_30d",
            "peak_ratio",
            "temp_c",
            "tariff",
        }


def test_deployment_show_prints_the_deployment_and_its_model(lakehouse: Any, capsys: Any) -> None:
    """The text form, for a deployment of folder (path) tables, which --json writes without
    the unset `table` keys the text form read."""
    deployment_file = lakehouse(rows=50, files=1)
    deployment = load_deployment(deployment_file)
    assert main(["deployment", "show", str(deployment_file)]) == 0
    shown = capsys.readouterr().out
    assert "models:/meter_risk@champion -> models:/meter_risk/2" in shown
    assert f"input      parquet {deployment.input.path}" in shown
    assert f"output     {deployment.output.path}" in shown
    assert f"runs       {deployment.runs.path}" in shown
    assert "risk_score" in shown and "kwh_7d" in shown


def test_runs_show_gives_one_run(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And its times in UTC with the offset, whatever the machine's time zone: PySpark collects
    timestamps as naive local times."""
    deployment_file = lakehouse(rows=50, files=1)
    assert main(["score", str(deployment_file), "--run-id", "shown", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert main(["runs", "show", str(deployment_file), "shown", "--json"]) == 0
    finally:
        monkeypatch.undo()
        time.tzset()
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == "shown" and shown["rows_read"] == 50
    assert shown["started_at"] == scored["started_at"]
    assert shown["started_at"].endswith("+00:00")
    assert main(["runs", "show", str(deployment_file), "nope"]) == 1
    assert "nope" in capsys.readouterr().err


def test_runs_of_another_deployment_sharing_the_runs_table_are_not_shown_as_ours(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    """Their rows are in that deployment's tables: `runs list` leaves them out and `runs show`
    names the deployment they belong to (it printed them with this deployment's tables)."""
    ours = lakehouse(rows=50, files=1)
    theirs = sharing_runs_table(ours, tmp_path)
    assert main(["score", str(ours), "--run-id", "mine"]) == 0
    assert main(["score", str(theirs), "--run-id", "theirs"]) == 0
    assert main(["score", str(ours), "--run-id", "mine-later"]) == 0
    capsys.readouterr()
    assert main(["runs", "list", str(ours), "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["mine-later", "mine"]
    assert main(["runs", "list", str(ours), "--json", "--limit", "1"]) == 0  # the newest
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["mine-later"]
    assert main(["runs", "show", str(ours), "theirs"]) == 1
    assert "is a run of deployment other-deployment" in capsys.readouterr().err


def test_stats_columns_of_the_deployment_are_the_tables_and_unknown_ones_are_named(
    lakehouse: Any, capsys: Any
) -> None:
    output = {"path": "scored/predictions", "stats_columns": ["meter_id", "_run_id"]}
    deployment_file = lakehouse(rows=60, files=1, output=output)
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file)]) == 0
    configuration = RustDeltaTable(deployment.output.path).metadata().configuration
    assert configuration["delta.dataSkippingStatsColumns"] == "meter_id,_run_id"

    for stats_columns, named in ((["kwh_7d"], "kwh_7d"), (["high_risk"], "high_risk (boolean)")):
        output = {"path": "scored/other", "stats_columns": stats_columns}
        code = main(["score", str(lakehouse(rows=60, files=1, output=output))])
        err = capsys.readouterr().err
        assert code == 2 and "output.stats_columns" in err and named in err


def test_the_demo_builds_a_lakehouse_and_scores_it(tmp_path: Path, capsys: Any) -> None:
    """`lakescore demo`, what the README's first command runs: a registry whose alias points at
    the model, sample files with some bad rows, a deployment file, and one run that reconciles."""
    import mlflow

    from lakescore.demo import ALIAS, MODEL_NAME

    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), "--rows", "1000"]) == 0
    assert f"Deployment file: {folder / 'deployment.yaml'}" in capsys.readouterr().out
    deployment = load_deployment(folder / "deployment.yaml")
    tracking_uri = deployment.model.tracking_uri
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert str(client.get_model_version_by_alias(MODEL_NAME, ALIAS).version) == "1"
    [run] = rust_table(deployment.runs.path).to_dict("records")
    assert run["status"] == "succeeded" and run["model_version"] == "1"
    assert run["rows_read"] == 1000 == run["rows_scored"] + run["rows_quarantined"]
    assert run["rows_quarantined"] > 0 and run["files_read"] == len(
        list((folder / "raw" / "meters").glob("*.parquet"))
    )
    predictions = rust_table(deployment.output.path)
    assert {"risk_score", "high_risk"} <= set(predictions.columns)
    assert len(predictions) == run["rows_scored"]
    assert len(rust_table(deployment.quarantine.path)) == run["rows_quarantined"]
