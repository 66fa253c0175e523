"""A model that raises on some rows: those rows are found by splitting batches and quarantined
with stage `score`; every other row is scored, and nothing is lost."""

from __future__ import annotations

import tempfile
from dataclasses import replace
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


def score_and_read(deployment_file: Path, run_id: str, capsys: Any) -> tuple[Any, Any, Any]:
    """Score with the command line, expecting success; the deployment and both tables."""
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", run_id]) == 0
    capsys.readouterr()
    return deployment, read(deployment.output.path), read(deployment.quarantine.path)


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
    deployment, predictions, quarantine = score_and_read(deployment_file, "picky", capsys)

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
    scoring_models.save(
        model,
        scoring_models.GappyModel(),
        ModelSignature(
            inputs=Schema([ColSpec("double", "kwh_7d"), ColSpec("double", "temp_c")]),
            outputs=Schema([ColSpec("double", "risk"), ColSpec("string", "note", required=False)]),
        ),
    )
    frame = make_meter_frame(300, seed=7).drop(columns=["fault"])
    hot = set(frame.loc[frame["temp_c"] > 20, "meter_id"])
    frosty = set(frame.loc[frame["temp_c"] < 0, "meter_id"])
    assert hot and frosty
    deployment_file = lakehouse(frame=frame, files=2, model=str(model), rules=[])
    deployment, predictions, quarantine = score_and_read(deployment_file, "gappy", capsys)

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


def save_code_path_model(folder: Path, factor: int, log: Path) -> Path:
    """A model shipping `featlib.py` (FACTOR = factor) in its code_paths, logging its workers."""
    code = folder / f"code-{factor}"
    code.mkdir(parents=True)
    (code / "featlib.py").write_text(f"FACTOR = {factor}\n")
    path = folder / f"model-{factor}"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=scoring_models.CodePathModel(str(log)),
        code_paths=[scoring_models.__file__, str(code / "featlib.py")],
        pip_requirements=["pandas"],
    )
    return path


def test_a_new_model_version_runs_its_own_code_in_a_reused_python_worker(
    lakehouse: Any, tmp_path: Path, spark: Any
) -> None:
    """Two versions ship a module of the same name. In a session that scores both (a notebook),
    the second ran the first's module: its predictions were the first version's, with its own
    version in the lineage; and the first, scored again, ran the second's. Unpacked models
    live in Spark's folder for shipped files, not in the system's temporary folder, where a
    copy per Python worker stayed after every run."""
    from pyspark import SparkFiles

    from lakescore.model_shipping import ship_model
    from lakescore.runner import score

    left_before = set(Path(tempfile.gettempdir()).glob("lakescore-[0-9]*"))
    # Several files, so each run's tasks keep both of the session's Python workers busy.
    deployment = load_deployment(lakehouse(rows=80, files=4, bad=False, rules=[]))
    deployment = replace(deployment, input=replace(deployment.input, passthrough=("kwh_7d",)))
    log = tmp_path / "workers.log"
    models = {f: save_code_path_model(tmp_path / "models", f, log) for f in (1, 1000)}
    workers: dict[str, set[str]] = {}
    # The first version again last: its worker still holds it loaded, next to the second.
    for run, factor in (("first", 1), ("second", 1000), ("first-again", 1)):
        chosen = replace(deployment, model=replace(deployment.model, uri=str(models[factor])))
        log.unlink(missing_ok=True)
        score(spark, chosen, run)
        workers[run] = {line.split()[1] for line in log.read_text().splitlines()}
        predictions = read(deployment.output.path)
        mine = predictions[predictions["_run_id"] == run]
        assert len(mine) == 80
        assert (mine["prediction"] == mine["kwh_7d"] * factor).all(), run
    shared = workers["first"] & workers["second"] & workers["first-again"]
    assert shared, f"no Python worker scored all three runs, nothing was checked: {workers}"
    unpacked = Path(SparkFiles.getRootDirectory(), "lakescore-models")
    archives = {p.name for p in unpacked.iterdir() if not p.name.startswith(".")}
    # Each version unpacked (ship_model gives a model shipped before the name it was sent as).
    assert {ship_model(spark, str(models[f])) for f in (1, 1000)} <= archives
    assert set(Path(tempfile.gettempdir()).glob("lakescore-[0-9]*")) == left_before


def test_a_model_the_executors_cannot_load_is_named_with_the_reason(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """The driver only reads the model's signature; the executors load it. A package they lack
    failed the run as the model failing "while scoring", as if a row had broken it."""
    path = scoring_models.save(tmp_path / "unloadable", scoring_models.UnloadableModel())
    deployment_file = lakehouse(rows=20, files=1, bad=False, rules=[], model=str(path))

    assert main(["score", str(deployment_file), "--run-id", "unloadable"]) == 1

    err = capsys.readouterr().err.splitlines()[-1]
    assert f"Model {path} could not be loaded on executor " in err and "/driver: " in err
    assert "ModuleNotFoundError: No module named 'featurestore_client'" in err
    run = read(load_deployment(deployment_file).runs.path).iloc[0]
    assert run["status"] == "failed" and "could not be loaded" in run["error"]
