"""Deployments that share their tables: a run id one deployment used is refused to another,
because every write replaces the rows of the run id in the shared tables."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def test_a_run_id_of_another_deployment_is_refused_and_its_rows_kept(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    first = lakehouse(rows=100, files=2)
    shutil.copytree(tmp_path / "raw" / "meters", tmp_path / "raw" / "meters_other")
    data = yaml.safe_load(first.read_text())
    data["name"] = "meter-risk-other"
    data["input"]["path"] = "raw/meters_other"
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(data))
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
