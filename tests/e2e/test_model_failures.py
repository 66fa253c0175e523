"""A model that raises on some rows: those rows are found by splitting batches and quarantined
with stage `score`; every other row is scored, and nothing is lost."""

from __future__ import annotations

from typing import Any

from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.demo import make_meter_frame


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


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
