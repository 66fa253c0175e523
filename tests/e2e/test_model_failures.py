"""A model that raises on some rows: those rows are found by splitting batches and quarantined
with stage `score`; every other row is scored, and nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import scoring_models
import yaml
from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.demo import make_meter_frame


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def edit_limits(deployment_file: Path, max_error_fraction: float) -> Path:
    data = yaml.safe_load(deployment_file.read_text())
    data["limits"] = {"max_error_fraction": max_error_fraction}
    deployment_file.write_text(yaml.safe_dump(data))
    return deployment_file


def test_rows_the_model_raises_on_are_isolated_and_quarantined(
    lakehouse: Any, registry: Any, capsys: Any
) -> None:
    registry.picky_log.unlink(missing_ok=True)
    frame = make_meter_frame(600, seed=5).drop(columns=["fault"])
    hot = set(frame.loc[frame["temp_c"] > 20, "meter_id"])
    assert 5 < len(hot) < 60
    deployment_file = lakehouse(
        frame=frame, files=2, model="models:/picky/1", scoring={"batch_size": 100}
    )
    deployment = load_deployment(deployment_file)

    assert main(["score", str(deployment_file), "--run-id", "picky"]) == 0
    capsys.readouterr()
    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)

    assert set(quarantine["meter_id"]) == hot
    assert not set(predictions["meter_id"]) & hot
    assert len(predictions) + len(quarantine) == 600
    for errors in quarantine["_errors"]:
        assert [(e["stage"], e["rule"]) for e in errors] == [("score", "model_error")]
        assert "cannot score temp_c" in errors[0]["message"]
    run = read(deployment.runs.path).iloc[0]
    assert run["status"] == "succeeded"
    assert dict(run["quarantined_by_reason"])["model_error"] == len(hot)

    calls = [int(line.split()[1]) for line in registry.picky_log.read_text().splitlines()]
    single_row_calls = sum(1 for n in calls if n == 1)
    assert len(calls) < 600 / 2, "bisection must not score rows one by one"
    assert single_row_calls < 600 / 4


def test_rows_a_model_leaves_without_a_required_prediction_are_quarantined(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """NaN for a required output is not a prediction: the row is quarantined as the model's
    error, naming the output, and counts against the limits. An optional output (`note`) may be
    null on a scored row."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    model = tmp_path / "gappy"
    mlflow.pyfunc.save_model(
        str(model),
        python_model=scoring_models.GappyModel(),
        signature=ModelSignature(
            inputs=Schema([ColSpec("double", "kwh_7d"), ColSpec("double", "temp_c")]),
            outputs=Schema([ColSpec("double", "risk"), ColSpec("string", "note", required=False)]),
        ),
        code_paths=[scoring_models.__file__],
        pip_requirements=["pandas"],
    )
    frame = make_meter_frame(300, seed=7).drop(columns=["fault"])
    hot = set(frame.loc[frame["temp_c"] > 20, "meter_id"])
    frosty = set(frame.loc[frame["temp_c"] < 0, "meter_id"])
    assert hot and frosty
    deployment_file = lakehouse(frame=frame, files=2, model=str(model), rules=[])
    deployment = load_deployment(deployment_file)

    assert main(["score", str(deployment_file), "--run-id", "gappy"]) == 0
    capsys.readouterr()
    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)

    assert set(quarantine["meter_id"]) == hot
    assert len(predictions) + len(quarantine) == 300
    assert predictions["risk"].notna().all()
    assert set(predictions.loc[predictions["note"].notna(), "meter_id"]) == frosty
    for errors in quarantine["_errors"]:
        assert [(e["stage"], e["rule"], e["message"]) for e in errors] == [
            (
                "score",
                "model_error",
                "the model returned no value (null or NaN) for required output(s) risk",
            )
        ]
    run = read(deployment.runs.path).iloc[0]
    assert dict(run["quarantined_by_reason"]) == {"model_error": len(hot)}
    assert run["rows_scored"] == 300 - len(hot)

    limited = edit_limits(deployment_file, 0.01)
    assert main(["score", str(limited), "--run-id", "gappy-limited"]) == 3  # aborted
