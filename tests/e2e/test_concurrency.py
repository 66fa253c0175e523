"""Runs at the same time: different deployments share tables and both keep all their rows;
two attempts of one run id can never both commit."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import yaml
from deltalake import DeltaTable
from paused_runs import paused_run

from lakescore.cli import main
from lakescore.config import load_deployment


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def other_deployment(first: Path, tmp_path: Path) -> Path:
    """A second deployment writing the same three tables as `first`, over a copy of its input
    (files renamed, so lineage tells them apart)."""
    second = tmp_path / "second.yaml"
    data = yaml.safe_load(first.read_text())
    data["name"] = "meter-risk-other"
    data["input"]["path"] = str(tmp_path / "raw" / "meters_other")
    second.write_text(yaml.safe_dump(data))
    shutil.copytree(tmp_path / "raw" / "meters", tmp_path / "raw" / "meters_other")
    for index, path in enumerate(sorted((tmp_path / "raw" / "meters_other").glob("*"))):
        path.rename(path.with_name(f"other-{index}.parquet"))
    return second


def test_two_deployments_writing_the_same_tables_at_once_keep_all_rows(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    first = lakehouse(rows=400, files=2)
    second = other_deployment(first, tmp_path)

    codes: dict[str, int] = {}

    def run(name: str, deployment: Path) -> None:
        codes[name] = main(["score", str(deployment), "--run-id", name])

    threads = [
        threading.Thread(target=run, args=(n, d)) for n, d in (("left", first), ("right", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    captured = capsys.readouterr()

    assert codes == {"left": 0, "right": 0}, captured.err[-3000:]
    deployment = load_deployment(first)
    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)
    runs = read(deployment.runs.path).set_index("run_id")
    for run_id in ("left", "right"):
        scored = predictions[predictions["_run_id"] == run_id]
        quarantined = quarantine[quarantine["_run_id"] == run_id]
        assert len(scored) == runs.loc[run_id, "rows_scored"]
        assert len(quarantined) == runs.loc[run_id, "rows_quarantined"]
        assert len(scored) + len(quarantined) == 400
        assert scored["meter_id"].is_unique
    assert set(runs["status"]) == {"succeeded"}


def test_a_run_id_of_another_deployment_is_refused_and_its_rows_kept(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """Every write replaces the rows of the run id, so a run id one deployment used is refused
    to another deployment sharing its tables (a scheduler's date passed to every job)."""
    first = lakehouse(rows=100, files=2)
    second = other_deployment(first, tmp_path)
    deployment = load_deployment(first)

    assert main(["score", str(first), "--run-id", "2024-06-01"]) == 0
    before = read(deployment.output.path)
    assert main(["score", str(second), "--run-id", "2024-06-01"]) == 2
    err = capsys.readouterr().err
    assert "Run id 2024-06-01 is already recorded" in err and "meter-risk-test" in err

    after = read(deployment.output.path)
    assert sorted(after["meter_id"]) == sorted(before["meter_id"])
    runs = read(deployment.runs.path)
    assert list(runs["deployment"]) == ["meter-risk-test"]
    assert list(runs["attempt"]) == [1]

    assert main(["score", str(second), "--run-id", "other-2024-06-01"]) == 0
    capsys.readouterr()
    assert len(read(deployment.output.path)) > len(before)


def test_an_older_attempt_of_the_same_run_id_cannot_commit(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=300, files=2)
    deployment = load_deployment(deployment_file)
    with paused_run("before_scoring", deployment_file, "twice", tmp_path, capture_stderr=True) as (
        older,
        resume,
    ):
        assert main(["score", str(deployment_file), "--run-id", "twice"]) == 0  # the newer one
        capsys.readouterr()
        resume.write_text("go")
        _, err = older.communicate(timeout=300)

    assert older.returncode == 1
    assert "was started again" in err and "without committing" in err
    predictions = read(deployment.output.path)
    run = read(deployment.runs.path).set_index("run_id").loc["twice"]
    assert run["status"] == "succeeded" and run["attempt"] == 2
    assert len(predictions) == run["rows_scored"] and predictions["meter_id"].is_unique
    versions = DeltaTable(deployment.output.path).history()
    committers = [h for h in versions if "twice" in str(h.get("userMetadata", ""))]
    assert len(committers) == 1, "only the newer attempt committed predictions"
