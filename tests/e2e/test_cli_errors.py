"""Each operator mistake gives its exit code and one clear sentence, never a traceback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable

from lakescore import runner
from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.errors import NoReadableInputError
from lakescore.progress import Progress
from lakescore.runs import RunRecord


def spark_free_read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def run(args: list[str], capsys: Any) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def edit(deployment_file: Path, change: Any) -> Path:
    data = yaml.safe_load(deployment_file.read_text())
    change(data)
    deployment_file.write_text(yaml.safe_dump(data))
    return deployment_file


def test_unknown_key_in_deployment_is_bad_usage(lakehouse: Any, capsys: Any) -> None:
    deployment = edit(lakehouse(rows=20, files=1), lambda d: d["output"].update(pth="x"))
    code, err = run(["score", str(deployment)], capsys)
    assert code == 2
    assert "unknown key output.pth" in err
    assert err.count(str(deployment)) == 1  # the file's own errors name it: the CLI adds nothing


def test_missing_deployment_file_is_bad_usage(tmp_path: Path, capsys: Any) -> None:
    code, err = run(["score", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "nope.yaml does not exist" in err


def test_missing_input_fails_the_run_and_records_it(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=20, files=1)
    code, err = run(
        ["score", str(deployment_file), "--input", "/no/such/input", "--run-id", "no-input"], capsys
    )
    assert code == 1
    assert "/no/such/input does not exist" in err
    assert main(["runs", "show", str(deployment_file), "no-input", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"status": "failed"' in out and "/no/such/input" in out


def test_an_input_path_naming_one_file_is_refused_naming_it(lakehouse: Any, capsys: Any) -> None:
    """Spark refused it with "Option 'basePath' must be a directory", naming neither the
    input nor the setting."""
    deployment_file = lakehouse(rows=20, files=1)
    [one] = sorted(Path(load_deployment(deployment_file).input.path).glob("*.parquet"))
    code, err = run(["score", str(deployment_file), "--input", str(one)], capsys)
    assert code == 2
    assert f"Input {one} is a file: input.path (or --input) names the folder" in err


def test_empty_input_folder_is_a_clear_failure(lakehouse: Any, capsys: Any, tmp_path: Path) -> None:
    deployment_file = lakehouse(rows=20, files=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run(["score", str(deployment_file), "--input", str(empty)], capsys)
    assert code == 1 and "holds no readable parquet files" in err


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [("models:/no_such_model/1", "no_such_model"), ("models:/meter_risk@nobody", "nobody")],
)
def test_unknown_model_or_alias_is_bad_usage(
    lakehouse: Any, capsys: Any, uri: str, fragment: str
) -> None:
    deployment_file = lakehouse(rows=20, files=1, model=uri)
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("lakescore: error:")]
    assert len(errors) == 1
    assert fragment in errors[0] and "was not found" in errors[0]
    runs = load_deployment(deployment_file).runs.path
    [record] = DeltaTable(runs).to_pyarrow_table().to_pylist()
    assert record["status"] == "failed" and record["model_uri"] == uri  # as requested
    assert record["model_version"] is None


def test_unreachable_registry_fails(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    deployment = edit(
        lakehouse(rows=20, files=1),
        lambda d: d["model"].update(tracking_uri="http://127.0.0.1:9"),
    )
    code, err = run(["score", str(deployment)], capsys)
    assert code == 1
    assert "http://127.0.0.1:9 could not be reached" in err


def test_missing_model_input_column_fails_before_any_work(
    lakehouse: Any, capsys: Any, spark: Any
) -> None:
    from lakescore.demo import make_meter_frame

    frame = make_meter_frame(30).drop(columns=["fault", "peak_ratio", "temp_c"])
    deployment_file = lakehouse(frame=frame, files=1)
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 1
    assert "lacks column(s) peak_ratio, temp_c" in err
    assert not Path(load_deployment(deployment_file).output.path).exists()


def test_settings_naming_columns_the_input_lacks_are_bad_usage(lakehouse: Any, capsys: Any) -> None:
    """key, passthrough and quarantine.redact are the deployment's settings, like a rule: a
    column they name that the input lacks exits 2, naming the setting and the input's columns
    (a typo shows among them). The run has started, so it is recorded as failed."""
    deployment_file = edit(
        lakehouse(rows=20, files=1),
        lambda d: d["input"].update(key="meterid", passthrough=["meterid", "regoin"]),
    )
    code, err = run(["score", str(deployment_file), "--run-id", "typo"], capsys)
    assert code == 2
    assert (
        f"{deployment_file}: input.key names meterid; input.passthrough names meterid, "
        "regoin, which the input "
        "lacks; it has meter_id," in err
    )
    runs = spark_free_read(load_deployment(deployment_file).runs.path)
    assert runs.set_index("run_id").loc["typo", "status"] == "failed"

    redacting = edit(
        deployment_file,
        lambda d: (
            d["input"].update(key="meter_id", passthrough=["meter_id"]),
            d["quarantine"].update(redact=["meterid"]),
        ),
    )
    code, err = run(["score", str(redacting)], capsys)
    assert code == 2
    assert f"{deployment_file}: quarantine.redact names meterid, which the input lacks" in err


def test_fail_rule_stops_the_run_with_nothing_committed(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(
        rows=100,
        files=1,
        rules=[{"name": "no_negatives", "expr": "kwh_7d >= 0", "action": "fail"}],
    )
    code, err = run(["score", str(deployment_file)], capsys)
    deployment = load_deployment(deployment_file)
    assert code == 1 and "broke rule(s) with action fail: no_negatives (" in err
    assert "nothing was committed" in err
    assert not Path(deployment.output.path).exists()
    assert not Path(deployment.quarantine.path).exists()


def test_invalid_rule_expression_is_bad_usage(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(
        rows=20,
        files=1,
        rules=[{"name": "typo", "expr": "kwh_7dd >= 0"}],
    )
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 2
    assert "Rule typo (kwh_7dd >= 0) is not a valid Spark SQL boolean expression" in err
    assert "kwh_7dd" in err.split("expression over the input:", 1)[1]


def test_a_rule_spark_cannot_parse_is_refused_before_the_run_waits_for_its_input(
    lakehouse: Any, capsys: Any
) -> None:
    """Not `aborted` for a marker not written yet (a scheduler retries that, and the typo would
    show only once the data lands), and no failed run recorded for a file never started."""
    deployment_file = edit(
        lakehouse(rows=20, files=1, rules=[{"name": "typo", "expr": "kwh_7d >="}]),
        lambda d: d["input"].update(expect={"marker": "_READY"}),
    )
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 2
    assert f"{deployment_file}: Rule typo (kwh_7d >=) is not valid Spark SQL" in err
    assert not Path(load_deployment(deployment_file).runs.path).exists()


@pytest.mark.parametrize(
    ("limits", "wanted"),
    [
        ({"max_error_fraction": 0.05}, "max_error_fraction"),
        (None, "The model failed on every row it was given ("),
    ],
    ids=["limits", "no-limits"],
)
def test_model_that_raises_on_every_row_trips_the_limits(
    lakehouse: Any, capsys: Any, limits: dict[str, float] | None, wanted: str
) -> None:
    """Without limits too: a broken model version succeeded with nothing scored."""
    deployment_file = lakehouse(rows=400, files=1, model="models:/broken/1", limits=limits)
    code, err = run(["score", str(deployment_file), "--run-id", "all-broken"], capsys)
    deployment = load_deployment(deployment_file)
    assert code == 3 and wanted in err
    assert not Path(deployment.output.path, "_delta_log").exists()
    quarantine = spark_free_read(deployment.quarantine.path)
    assert len(quarantine) == 400
    messages = {
        e["message"] for errors in quarantine["_errors"] for e in errors if e["stage"] == "score"
    }
    assert any("the model cannot score this batch" in m for m in messages)
    staging = Path(deployment.output.path).parent / "_lakescore_staging" / deployment.name
    assert not (staging / "all-broken").exists()  # failed rows as read are not left behind


def test_model_returning_too_few_rows_fails_naming_the_model(lakehouse: Any, capsys: Any) -> None:
    deployment = lakehouse(rows=40, files=1, bad=False, model="models:/short/1")
    code, err = run(["score", str(deployment)], capsys)
    assert code == 1
    assert "models:/short/1" in err and "predictions for" in err
    assert err.splitlines()[-1] == (  # the model named once, its own message not wrapped again
        "lakescore: error: Model models:/short/1 returned 39 predictions for 40 rows."
    )


def test_a_model_that_crashes_its_python_worker_is_named(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    """Killed inside predict (out of memory, a native crash), the worker raises no Python
    error: the run failed with Spark's "Job aborted", naming no model."""
    import scoring_models

    model = scoring_models.save(tmp_path / "crashing", scoring_models.CrashingModel())
    code, err = run(["score", str(lakehouse(rows=40, files=1, model=str(model)))], capsys)
    assert code == 1
    assert "crashed its Python worker while scoring (out of memory" in err


@pytest.mark.parametrize(
    ("option", "value", "wanted"),
    [
        ("--run-id", "a b'c", 'Run id "a b\'c" must start with a letter or digit'),
        ("--run-id", "", "Run id is empty: give one, or none at all for a new id"),
        ("--run-id", "  ", "Run id is empty"),
        ("--input", " ", "--input is empty"),
    ],
)
def test_a_bad_or_empty_option_is_bad_usage_before_anything_runs(
    lakehouse: Any, capsys: Any, option: str, value: str, wanted: str
) -> None:
    """An empty --run-id or --input (a scheduler's unset variable) was ignored: a new run id,
    so retries no longer replaced each other's rows, or the deployment's own input. The error
    is about the option, not the deployment file, and nothing is recorded."""
    deployment_file = lakehouse(rows=20, files=1)
    code, err = run(["score", str(deployment_file), option, value], capsys)
    assert code == 2
    assert err.splitlines()[-1].startswith(f"lakescore: error: {wanted}")
    assert not Path(load_deployment(deployment_file).runs.path).exists()


def test_every_failure_with_json_prints_the_error_and_the_runs_record(
    lakehouse: Any, capsys: Any
) -> None:
    """A scheduler parsing --json gets {"error", "exit_code", "run"} for every failure: the
    record of a run without --run-id too, and for a bad deployment file (no run: null)."""
    deployment_file = lakehouse(rows=20, files=1)
    assert main(["score", str(deployment_file), "--input", "/no/such/input", "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert failed["exit_code"] == 1 and "/no/such/input" in failed["error"]
    assert failed["run"]["status"] == "failed" and failed["run"]["error"]

    bad = edit(deployment_file, lambda d: d["output"].update(pth="x"))
    assert main(["score", str(bad), "--json"]) == 2
    refused = json.loads(capsys.readouterr().out)
    assert refused["exit_code"] == 2 and "output.pth" in refused["error"]
    assert refused["run"] is None


def test_a_runs_table_that_cannot_be_written_is_named_not_a_jvm_object(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    """The `running` record cannot be written, nor then the failure's record: one sentence
    naming the runs table and Delta's reason, not Py4J's `An error occurred while calling`."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs table's folder should be")
    deployment_file = edit(
        lakehouse(rows=20, files=1), lambda d: d["runs"].update(path=str(blocker / "runs"))
    )
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith("lakescore: error:")]
    assert f"could not write its record to the runs table at {blocker / 'runs'}" in line
    assert "could not be recorded in the runs table" in line
    assert "An error occurred while calling" not in line


def test_an_unrecordable_failure_keeps_what_its_error_carries(
    lakehouse: Any, spark: Any, tmp_path: Path
) -> None:
    """When the failure's record cannot be written either, the error says so and keeps what it
    carried: the unreadable files of a run that could read none (it was a TypeError)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs table's folder should be")
    deployment = load_deployment(
        edit(lakehouse(rows=20, files=1), lambda d: d["runs"].update(path=str(blocker / "runs")))
    )
    unreadable = [{"path": "/raw/part-0.parquet", "error": "not a Parquet file"}]
    error = NoReadableInputError("No input file of run r could be read.", unreadable)
    error.__cause__ = OSError("the storage's reason")
    record = RunRecord("r", deployment.name, "failed", datetime.now(UTC), deployment.input.path)
    with pytest.raises(NoReadableInputError) as raised:
        runner._record_failure(spark, deployment, record, Progress(enabled=False), error)
    assert raised.value.files_failed == unreadable
    assert raised.value.__cause__ is error.__cause__  # a traceback still shows the run's cause
    assert str(raised.value).startswith("No input file of run r could be read. The run could not")
    assert f"recorded in the runs table at {blocker / 'runs'} either" in str(raised.value)


@pytest.mark.parametrize(
    "args", [["runs", "list", "deployment.yaml", "--limit", "0"], ["demo", "--rows", "0"]]
)
def test_numbers_out_of_range_are_usage_errors(args: list[str], capsys: Any) -> None:
    """Refused by the parser (exit 2, naming the bound), not by Spark or the demo's limits."""
    assert main(args) == 2
    assert "must be at least" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["score", "deployment.yaml", "--json", "--bogus"], "unrecognized arguments: --bogus"),
        (["runs", "list", "deployment.yaml", "--json", "--limit", "0"], "must be at least 1"),
        (["runs", "show", "deployment.yaml", "--json"], "required: run_id"),
    ],
)
def test_usage_errors_with_json_print_json(args: list[str], wanted: str, capsys: Any) -> None:
    """A scheduler that asked for --json gets {error, exit_code, run} on stdout for a command
    line argparse refuses too (it got nothing), and the usage on stderr."""
    assert main(args) == 2
    out, err = capsys.readouterr()
    reply = json.loads(out)
    assert reply["exit_code"] == 2 and reply["run"] is None and wanted in reply["error"]
    assert err.startswith("usage: lakescore") and "lakescore: error: " in err and wanted in err


def test_usage_errors_without_json_print_nothing_on_stdout(capsys: Any) -> None:
    assert main(["score", "deployment.yaml", "--bogus"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "lakescore: error: unrecognized arguments: --bogus" in err


def test_quieting_pysparks_error_loggers_keeps_them_pysparks(tmp_path: Path, capsys: Any) -> None:
    """A plain logging.Logger under PySpark's query-context logger names (what quieting them
    with logging.getLogger made) turns every later analysis error of the process into
    `TypeError: Logger._log() got an unexpected keyword argument`."""
    from pyspark.logger import PySparkLogger

    run(["score", str(tmp_path / "nope.yaml")], capsys)
    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        assert isinstance(logging.getLogger(name), PySparkLogger)


@pytest.mark.parametrize(
    ("expr", "wanted"),
    [
        ("kwh_7d - 2", "gives double, not true or false"),
        ("avg(kwh_7d) > 0", "aggregates the whole input"),
        ("rand() < 0.5", "is not deterministic"),
        ("kwh_7d > avg(kwh_7d) OVER () + rand()", "is not deterministic"),
    ],
)
def test_rules_that_are_not_row_checks_are_bad_usage(
    lakehouse: Any, capsys: Any, expr: str, wanted: str
) -> None:
    """A number cast to boolean, an aggregate that fails only inside the pass, and a verdict
    that changes each time the row is looked at (rows quarantined with no reason) are refused
    before the pass, naming the rule."""
    deployment_file = lakehouse(rows=20, files=1, rules=[{"name": "odd", "expr": expr}])
    code, err = run(["score", str(deployment_file)], capsys)
    assert code == 2 and "Rule odd" in err and wanted in err
