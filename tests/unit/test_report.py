"""The human summary of a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakescore.config import Deployment, load_deployment
from lakescore.report import format_runs, print_run


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    file = tmp_path / "deployment.yaml"
    file.write_text(
        "name: d\nmodel: {uri: models:/m/1}\ninput: {format: parquet, path: in}\n"
        "output: {path: out}\nquarantine: {path: q}\nruns: {path: runs}\n"
    )
    return load_deployment(file)


def test_a_run_with_many_unreadable_files_lists_ten_and_counts_the_rest(
    deployment: Deployment, capsys: Any
) -> None:
    failed = [{"path": f"in/part-{n}.parquet", "error": "not Parquet"} for n in range(12)]
    record = {"run_id": "r", "status": "succeeded", "input": "in", "files_failed": failed}
    print_run(record, deployment)
    out = capsys.readouterr().out
    assert "not read     12 file(s)" in out
    assert "part-9.parquet: not Parquet" in out and "part-10.parquet" not in out
    assert "... and 2 more" in out


STARTED = datetime(2026, 11, 26, 10, 40, 24, tzinfo=UTC)


def test_runs_list_shows_when_each_run_started_and_how_long_it_took() -> None:
    finished = {"started_at": STARTED, "finished_at": STARTED + timedelta(seconds=125)}
    runs = [
        {"run_id": "a", "status": "succeeded", "rows_read": 10, "files_read": 2} | finished,
        {"run_id": "b", "status": "running", "started_at": STARTED},
    ]
    header, done, running = format_runs(runs).splitlines()
    assert header.split()[8:11] == ["started", "(UTC)", "took"]
    assert done.split()[5:8] == ["0", "2026-11-26T10:40:24Z", "2m05s"]
    assert running.split()[5:8] == ["-", "2026-11-26T10:40:24Z", "-"]  # nothing listed yet


def test_a_run_summary_gives_its_times_and_attempts(deployment: Deployment, capsys: Any) -> None:
    record = {
        "run_id": "r",
        "status": "succeeded",
        "input": "in",
        "started_at": STARTED,
        "finished_at": STARTED + timedelta(seconds=7),
        "attempt": 2,
        "previous_attempts": [{"attempt": 1, "status": "interrupted"}],
    }
    print_run(record, deployment)
    out = capsys.readouterr().out
    assert "started      2026-11-26T10:40:24Z, took 7s (attempt 2; earlier: 1 interrupted)" in out


def test_a_run_summary_names_the_alias_its_model_version_came_from(
    deployment: Deployment, capsys: Any
) -> None:
    pinned = {"run_id": "r", "status": "succeeded", "input": "in", "model_version": "3"}
    for requested in ("models:/m@champion", "models:/m/3"):
        record = pinned | {"model_uri": "models:/m/3", "requested_model_uri": requested}
        print_run(record, deployment)
    with_alias, as_pinned = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("  model ")
    ]
    assert with_alias.split(None, 1)[1] == "models:/m/3 (version 3, from models:/m@champion)"
    assert as_pinned.split(None, 1)[1] == "models:/m/3 (version 3)"


def test_a_run_that_committed_nothing_does_not_say_its_warned_rows_were_scored(
    deployment: Deployment, capsys: Any
) -> None:
    warned = {"input": "in", "warnings_by_rule": {"plausible": 5}}
    print_run({"run_id": "ok", "status": "succeeded", **warned}, deployment)
    print_run({"run_id": "stopped", "status": "aborted", **warned}, deployment)
    # Failed on counts that did not reconcile, after committing its predictions.
    unreconciled = {"status": "failed", "output_version": 4, "rows_scored": 90}
    print_run({"run_id": "off", **unreconciled, **warned}, deployment)
    succeeded, rest = capsys.readouterr().out.split("run stopped aborted")
    aborted, unreconciled = rest.split("run off failed")
    assert "warned       plausible: 5 rows (scored anyway)" in succeeded
    assert "warned       plausible: 5 rows (would have been scored)" in aborted
    assert "warned       plausible: 5 rows (scored anyway)" in unreconciled


def test_one_row_is_a_row(deployment: Deployment, capsys: Any) -> None:
    one = {"warnings_by_rule": {"plausible": 1}}
    one |= {"executors": [{"executor": "driver", "rows": 1, "tasks": 1}]}
    print_run({"run_id": "r", "status": "succeeded", "input": "in", **one}, deployment)
    out = capsys.readouterr().out
    assert "plausible: 1 row (scored anyway)" in out
    assert "driver: 1 row in 1 task(s)" in out


def test_a_summary_prints_no_credentials_a_path_carries(tmp_path: Path, capsys: Any) -> None:
    """`--json` was scrubbed, the text summary not: a scheduler keeps it in its logs."""
    file = tmp_path / "deployment.yaml"
    file.write_text(
        "name: d\nmodel: {uri: models:/m/1}\n"
        "input: {format: parquet, path: 's3a://AKIA1:s3cr3t@landing/meters'}\n"
        "output: {path: 's3a://AKIA1:s3cr3t@lake/out'}\nquarantine: {path: q}\nruns: {path: runs}\n"
    )
    deployment = load_deployment(file)
    print_run({"run_id": "r", "status": "succeeded", "input": deployment.input.path}, deployment)
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and "s3a://***@lake/out" in out
