"""Kill a real run (SIGKILL of its whole process group) at each stage, rerun the same run id, and
check the tables end exactly as one clean run leaves them, with the attempt history kept."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from paused_runs import paused_run

from lakescore.cli import main
from lakescore.config import load_deployment


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def kill_at(point: str, deployment_file: Path, run_id: str, tmp_path: Path) -> None:
    """Start `lakescore score`, wait until it pauses at `point`, SIGKILL its process group."""
    with paused_run(point, deployment_file, run_id, tmp_path) as (process, _):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def comparable(frame: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted(map(tuple, frame[columns].astype(str).itertuples(index=False)))


@pytest.mark.e2e
@pytest.mark.parametrize("point", ["scoring", "after_predictions_commit", "before_run_record"])
def test_rerun_after_a_kill_leaves_tables_as_one_clean_run(
    point: str, lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=600, files=3, scoring={"batch_size": 50})
    deployment = load_deployment(deployment_file)
    kill_at(point, deployment_file, "nightly", tmp_path)

    runs = read(deployment.runs.path)
    assert list(runs["status"]) == ["running"]  # the killed attempt never finished

    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    assert main(["score", str(deployment_file), "--run-id", "clean"]) == 0
    capsys.readouterr()

    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)
    kept = ["meter_id", "region", "risk_score", "high_risk", "_model_version", "_source_file"]
    nightly, clean = (predictions[predictions["_run_id"] == r] for r in ("nightly", "clean"))
    assert comparable(nightly, kept) == comparable(clean, kept)
    assert nightly["meter_id"].is_unique
    q_nightly, q_clean = (quarantine[quarantine["_run_id"] == r] for r in ("nightly", "clean"))
    assert sorted(q_nightly["meter_id"]) == sorted(q_clean["meter_id"])
    assert q_nightly["meter_id"].is_unique
    assert len(nightly) + len(q_nightly) == 600

    run = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert run["status"] == "succeeded" and run["attempt"] == 2
    assert [(a["attempt"], a["status"]) for a in run["previous_attempts"]] == [(1, "interrupted")]
    assert (
        not Path(deployment.output.path)
        .parent.joinpath("_lakescore_staging", deployment.name, "nightly")
        .exists()
    )


def test_a_failed_rerun_after_a_kill_says_the_killed_attempts_rows_may_remain(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """The killed attempt committed its predictions; the rerun fails before committing
    anything. Its record must not suggest the tables hold nothing of the run, and the killed
    attempt's staging (its rows to quarantine, as read) must not outlive the rerun."""
    deployment_file = lakehouse(rows=200, files=2)
    deployment = load_deployment(deployment_file)
    kill_at("after_predictions_commit", deployment_file, "nightly", tmp_path)
    staging = Path(deployment.output.path).parent / "_lakescore_staging" / deployment.name
    assert (staging / "nightly").exists()

    missing = str(tmp_path / "no_input_here")
    assert main(["score", str(deployment_file), "--run-id", "nightly", "--input", missing]) == 1
    capsys.readouterr()

    run = read(deployment.runs.path).set_index("run_id").loc["nightly"]
    assert run["status"] == "failed" and run["attempt"] == 2
    assert "may still hold rows that attempt 1 of run nightly committed" in run["error"]
    [killed] = run["previous_attempts"]
    assert killed["status"] == "interrupted" and len(killed["attempt_id"]) == 32
    assert not (staging / "nightly").exists()
