"""One of a run's two table commits fails: the other table's rows of that run id go back to what
they were before the attempt, so a failed run changes neither table."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deltalake import DeltaTable
from pyspark.sql import functions as F

from lakescore.cli import main
from lakescore.config import load_deployment


def rows_of(path: str, run_id: str) -> list[str]:
    frame = DeltaTable(path).to_pyarrow_table().to_pandas()
    return sorted(frame.loc[frame["_run_id"] == run_id, "meter_id"])


def freeze(spark: Any, path: str, time_column: str) -> None:
    """Add a CHECK constraint that the table's rows meet and the rows of any
    later commit break (they are stamped later): lakescore's next commit to it fails. (A column
    stored as another type no longer does: the run fails before the pass, or casts.)"""
    latest = (
        spark.read.format("delta")
        .load(path)
        .agg(F.date_format(F.max(time_column), "yyyy-MM-dd HH:mm:ss.SSSSSS"))
        .first()[0]
    )
    spark.sql(
        f"ALTER TABLE delta.`{path}` ADD CONSTRAINT frozen "
        f"CHECK ({time_column} <= TIMESTAMP'{latest}')"
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("failing", "column", "other"),
    [("output", "_scored_at", "quarantine"), ("quarantine", "_quarantined_at", "output")],
)
def test_when_one_commit_fails_the_other_table_keeps_the_earlier_attempts_rows(
    failing: str, column: str, other: str, lakehouse: Any, spark: Any, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=300, files=3)
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    deployment = load_deployment(deployment_file)
    other_path = getattr(deployment, other).path
    before = rows_of(other_path, "nightly")

    # The second attempt would move rows between the tables (one more quarantine rule), but the
    # commit to `failing` breaks its constraint.
    settings = yaml.safe_load(deployment_file.read_text())
    settings["rules"].append({"name": "not_north", "expr": "region <> 'north'"})
    deployment_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    freeze(spark, getattr(deployment, failing).path, column)
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 1
    capsys.readouterr()

    assert rows_of(other_path, "nightly") == before
    history = DeltaTable(other_path).history(1)[0]
    assert '"action": "revert"' in history["userMetadata"]
    runs = DeltaTable(deployment.runs.path).to_pyarrow_table().to_pandas()
    run = runs.set_index("run_id").loc["nightly"]
    assert run["status"] == "failed" and "does not conform" in run["error"]  # the constraint


@pytest.mark.e2e
def test_a_commit_error_naming_an_input_file_fails_the_run_and_leaves_no_file_out(
    lakehouse: Any, spark: Any, capsys: Any
) -> None:
    """Delta's CHECK violation quotes the row's values, `_source_file` among them: the file it
    named was taken for one that failed while being read, and the input read again without it,
    so the run succeeded with that file's rows in no table."""
    from pathlib import Path

    deployment_file = lakehouse(rows=200, files=2)
    assert main(["score", str(deployment_file), "--run-id", "first"]) == 0
    deployment = load_deployment(deployment_file)
    first_file = sorted(Path(deployment.input.path).glob("*.parquet"))[0].name
    spark.sql(
        f"ALTER TABLE delta.`{deployment.output.path}` ADD CONSTRAINT not_first "
        f"CHECK (_run_id = 'first' OR _source_file NOT LIKE '%{first_file}')"
    )
    assert main(["score", str(deployment_file), "--run-id", "second"]) == 1
    capsys.readouterr()

    runs = DeltaTable(deployment.runs.path).to_pyarrow_table().to_pandas()
    run = runs.set_index("run_id").loc["second"]
    assert run["status"] == "failed" and "does not conform" in run["error"]  # the constraint
    assert len(run["files_failed"]) == 0
    assert rows_of(deployment.output.path, "second") == []
    assert rows_of(deployment.quarantine.path, "second") == []


@pytest.mark.e2e
def test_a_failed_commit_takes_back_the_attempts_unreadable_files_too(
    lakehouse: Any, spark: Any, capsys: Any
) -> None:
    """The failed-files table is committed before the other two: when a later commit fails, its
    rows of the run id go back too, instead of naming a file the tables' attempt never saw."""
    from pathlib import Path

    deployment_file = lakehouse(rows=100, files=2)
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    deployment = load_deployment(deployment_file)
    Path(deployment.input.path, "zz-broken.parquet").write_text("not parquet")
    freeze(spark, deployment.output.path, "_scored_at")
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 1
    capsys.readouterr()
    failed_files = DeltaTable(deployment.quarantine.path + "_failed_files").to_pyarrow_table()
    assert "nightly" not in failed_files.column("_run_id").to_pylist()


@pytest.mark.e2e
def test_a_limit_abort_whose_quarantine_cannot_be_committed_keeps_the_earlier_predictions(
    lakehouse: Any, spark: Any, capsys: Any
) -> None:
    """An aborted rerun removes the earlier attempt's predictions only once its quarantine is
    committed: when that commit fails, the run fails and the predictions are still there."""
    deployment_file = lakehouse(rows=300, files=3)
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 0
    deployment = load_deployment(deployment_file)
    before = rows_of(deployment.output.path, "nightly")

    settings = yaml.safe_load(deployment_file.read_text())
    settings["rules"].append({"name": "nothing_passes", "expr": "false"})
    settings["limits"] = {"max_error_fraction": 0.5}
    deployment_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    freeze(spark, deployment.quarantine.path, "_quarantined_at")
    assert main(["score", str(deployment_file), "--run-id", "nightly"]) == 1
    capsys.readouterr()

    assert rows_of(deployment.output.path, "nightly") == before
    runs = DeltaTable(deployment.runs.path).to_pyarrow_table().to_pandas()
    run = runs.set_index("run_id").loc["nightly"]
    assert run["status"] == "failed" and "does not conform" in run["error"]  # the constraint


def test_a_run_whose_counts_do_not_reconcile_is_failed_and_keeps_its_commits(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's promise: a run is `succeeded` only when rows read = scored + quarantined;
    otherwise it is `failed`, says the three counts, and keeps both commits (taking them back
    would remove correct rows). The miscount is injected: the quarantine commit is reported
    one row short of what it wrote."""
    from dataclasses import replace

    from lakescore import commits
    from lakescore.errors import LakescoreError
    from lakescore.runner import score

    landed = commits._landed
    calls: list[int] = []

    def quarantine_one_row_short(commit: Any) -> Any:
        calls.append(1)
        found = landed(commit)
        return replace(found, rows=found.rows - 1) if len(calls) == 2 else found

    monkeypatch.setattr(commits, "_landed", quarantine_one_row_short)
    deployment = load_deployment(lakehouse(rows=100, files=1))

    with pytest.raises(LakescoreError, match="Counts do not reconcile: read 100, scored") as raised:
        score(spark, deployment, "miscounted")

    run = raised.value.run_record
    assert run["status"] == "failed"
    assert run["rows_read"] == 100
    assert run["rows_scored"] + run["rows_quarantined"] == 99
    stored = DeltaTable(deployment.runs.path).to_pandas().set_index("run_id").loc["miscounted"]
    assert stored["status"] == "failed" and "do not reconcile" in stored["error"]
    kept = rows_of(deployment.output.path, "miscounted") + rows_of(
        deployment.quarantine.path, "miscounted"
    )
    assert len(kept) == 100  # both commits stay


def test_a_final_record_whose_write_fails_once_is_written_again(
    lakehouse: Any, spark: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The rows are committed: a storage error that passes must not leave the run `running`
    for ever (its write raised a real Spark error the first time)."""
    from pyspark.errors import PySparkException

    from lakescore import runner

    deployment = load_deployment(lakehouse(rows=50, files=1))
    monkeypatch.setattr(runner, "_FINAL_RECORD_WAITS", (0.0, 0.0))
    write_run, failures = runner.write_run, []

    def failing_once(session: Any, path: str, record: Any, table: Any = None) -> None:
        if record.status != "running" and not failures:
            try:
                session.sql(f"SELECT * FROM delta.`{tmp_path / 'no-such-table'}`").collect()
            except PySparkException as exc:
                failures.append(exc)
                raise
        write_run(session, path, record, table)

    monkeypatch.setattr(runner, "write_run", failing_once)
    result = runner.score(spark, deployment, "flaky")

    assert len(failures) == 1 and result.record.status == "succeeded"
    runs = DeltaTable(deployment.runs.path).to_pyarrow_table().to_pylist()
    assert [(r["run_id"], r["status"]) for r in runs] == [("flaky", "succeeded")]
