"""The human summary of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakescore.config import load_deployment
from lakescore.report import print_run


def test_a_run_with_many_unreadable_files_lists_ten_and_counts_the_rest(
    tmp_path: Path, capsys: Any
) -> None:
    file = tmp_path / "deployment.yaml"
    file.write_text(
        "name: d\nmodel: {uri: models:/m/1}\ninput: {format: parquet, path: in}\n"
        "output: {path: out}\nquarantine: {path: q}\nruns: {path: runs}\n"
    )
    failed = [{"path": f"in/part-{n}.parquet", "error": "not Parquet"} for n in range(12)]
    record = {"run_id": "r", "status": "succeeded", "input": "in", "files_failed": failed}
    print_run(record, load_deployment(file))
    out = capsys.readouterr().out
    assert "not read     12 file(s)" in out
    assert "part-9.parquet: not Parquet" in out and "part-10.parquet" not in out
    assert "... and 2 more" in out
