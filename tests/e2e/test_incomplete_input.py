"""input.expect: an incomplete input stops the run before scoring, exit 3, nothing committed,
and the run record says what is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def assert_stopped(deployment_file: Path, run_id: str, capsys: Any, *fragments: str) -> None:
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", run_id]) == 3
    err = capsys.readouterr().err
    run = read(deployment.runs.path).set_index("run_id").loc[run_id]
    assert run["status"] == "aborted"
    for fragment in fragments:
        assert fragment in err and fragment in run["error"]
    assert not Path(deployment.output.path).exists()
    assert not Path(deployment.quarantine.path).exists()


def test_missing_marker_stops_the_run_until_the_producer_writes_it(
    lakehouse: Any, capsys: Any
) -> None:
    base = {
        "format": "parquet",
        "path": "raw/meters",
        "key": "meter_id",
        "passthrough": ["meter_id", "region"],
        "expect": {"marker": "_SUCCESS"},
    }
    deployment_file = lakehouse(rows=120, files=2, input=base)
    assert_stopped(deployment_file, "early", capsys, "marker file _SUCCESS is missing")

    (Path(load_deployment(deployment_file).input.path) / "_SUCCESS").write_text("")
    assert main(["score", str(deployment_file), "--run-id", "early"]) == 0
    capsys.readouterr()


def test_a_marker_written_while_the_input_is_listed_does_not_pass_that_listing(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The producer writes its marker last: one that appears after the listing began may have
    come with files the listing missed, so it counts only if it was there before."""
    from lakescore import io

    base = {"format": "parquet", "path": "raw/meters", "key": "meter_id"}
    deployment_file = lakehouse(rows=120, files=2, input={**base, "expect": {"marker": "_SUCCESS"}})
    listing = io.list_input_files

    def listed_then_marked(spark: Any, folder: str) -> list[str]:
        files = listing(spark, folder)
        (Path(folder) / "_SUCCESS").write_text("")  # the producer finishes just after
        return files

    monkeypatch.setattr(io, "list_input_files", listed_then_marked)
    assert_stopped(deployment_file, "racing", capsys, "marker file _SUCCESS is missing")


@pytest.mark.parametrize(
    ("expect", "fragment"),
    [
        # Before reading, nothing was scored; min_rows is known only after the scoring pass.
        (
            {"min_files": 5},
            "3 readable file(s), fewer than min_files 5. Nothing was scored or committed.",
        ),
        ({"min_rows": 1000}, "300 rows, fewer than min_rows 1,000. Nothing was committed."),
    ],
)
def test_too_few_files_or_rows_stop_the_run(
    lakehouse: Any, capsys: Any, expect: dict[str, int], fragment: str
) -> None:
    base = {"format": "parquet", "path": "raw/meters", "key": "meter_id", "expect": expect}
    assert_stopped(lakehouse(rows=300, files=3, input=base), "short", capsys, fragment)


def with_manifest(path: str) -> dict[str, Any]:
    """An `input` section reading `path`, complete when it matches `manifest.json`."""
    return {
        "format": "parquet",
        "path": path,
        "key": "meter_id",
        "expect": {"manifest": "manifest.json"},
    }


def row_counts(folder: Path) -> dict[str, int]:
    """Rows of each Parquet file in `folder`, by file name, from the footers."""
    return {f.name: pq.read_metadata(f).num_rows for f in sorted(folder.glob("*.parquet"))}


def test_manifest_names_missing_files_and_wrong_row_counts(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.json"
    deployment_file = lakehouse(rows=300, files=3, input=with_manifest("raw/meters"))
    rows = row_counts(Path(load_deployment(deployment_file).input.path))
    first = next(iter(rows))
    entries = [{"path": name, "rows": count} for name, count in rows.items()]
    entries[0]["rows"] += 1
    entries.append({"path": "meters-999.parquet", "rows": 10})
    manifest.write_text(json.dumps({"files": entries}))
    assert_stopped(deployment_file, "manifest", capsys, "meters-999.parquet")

    entries = [{"path": name, "rows": count} for name, count in rows.items()]
    entries[0]["rows"] += 1
    manifest.write_text(json.dumps({"files": entries}))
    assert_stopped(
        deployment_file,
        "manifest-rows",
        capsys,
        f"{first} has {rows[first]:,} rows, the manifest says",
    )

    manifest.write_text(json.dumps({"files": [{"path": n, "rows": c} for n, c in rows.items()]}))
    assert main(["score", str(deployment_file), "--run-id", "complete"]) == 0
    capsys.readouterr()


def test_a_manifest_not_written_yet_stops_the_run_as_incomplete(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    """A producer writes its manifest last, like a marker: until then the input is incomplete
    (exit 3, retry later), not a failed run (exit 1)."""
    deployment_file = lakehouse(rows=120, files=2, input=with_manifest("raw/meters"))
    missing = f"manifest {tmp_path / 'manifest.json'} is missing or still empty"
    assert_stopped(deployment_file, "early", capsys, missing)
    # Created before its text is written: still not written (it was a bad deployment, exit 2).
    (tmp_path / "manifest.json").write_text("")
    assert_stopped(deployment_file, "created", capsys, missing)


def test_manifest_row_counts_hold_for_a_folder_with_a_space(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """Spark names source files as URIs (a space is %20); the manifest's plain names still
    match, so a complete input is scored rather than aborted as incomplete."""
    deployment_file = lakehouse(rows=120, files=2, input=with_manifest("raw/my meters"))
    shutil.move(tmp_path / "raw" / "meters", tmp_path / "raw" / "my meters")
    rows = row_counts(tmp_path / "raw" / "my meters")
    entries = [{"path": name, "rows": count} for name, count in rows.items()]
    (tmp_path / "manifest.json").write_text(json.dumps({"files": entries}))
    assert main(["score", str(deployment_file), "--run-id", "space"]) == 0, capsys.readouterr()


def test_an_incomplete_rerun_keeps_the_earlier_rows_and_says_so(
    lakehouse: Any, capsys: Any
) -> None:
    """A rerun that stops changes neither table: the earlier attempt's rows stay, and the run
    record, which now describes the stopped attempt, says which attempt's rows those are."""
    deployment_file = lakehouse(rows=120, files=2)
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", "n"]) == 0
    before = read(deployment.output.path)

    changed = yaml.safe_load(deployment_file.read_text())
    changed["input"]["expect"] = {"min_rows": 1000}
    deployment_file.write_text(yaml.safe_dump(changed, sort_keys=False))
    assert main(["score", str(deployment_file), "--run-id", "n"]) == 3
    capsys.readouterr()

    after = read(deployment.output.path)
    assert sorted(after["meter_id"]) == sorted(before["meter_id"])
    run = read(deployment.runs.path).set_index("run_id").loc["n"]
    assert run["status"] == "aborted" and run["attempt"] == 2
    assert "still hold the rows that attempt 1 of run n committed" in run["error"]


def with_two_broken_files(lakehouse: Any, expect: dict[str, int]) -> tuple[Path, Path]:
    """Three readable files of 300 rows and two unreadable ones (not Parquet, zero bytes); return
    the deployment file and the input folder."""
    base = {"format": "parquet", "path": "raw/meters", "key": "meter_id", "expect": expect}
    deployment_file = lakehouse(rows=300, files=3, input=base)
    folder = Path(load_deployment(deployment_file).input.path)
    (folder / "broken-1.parquet").write_text("not parquet")
    (folder / "broken-2.parquet").write_bytes(b"")
    return deployment_file, folder


def test_unreadable_files_do_not_count_towards_min_files(lakehouse: Any, capsys: Any) -> None:
    deployment_file, _ = with_two_broken_files(lakehouse, {"min_files": 4})
    assert_stopped(deployment_file, "corrupt", capsys, "3 readable file(s), fewer than min_files 4")


def test_more_unreadable_files_than_max_unreadable_files_stop_the_run(
    lakehouse: Any, capsys: Any
) -> None:
    """Without the setting a run with unreadable files succeeds and records them (their rows are
    in no table); with it, a run that must be complete stops before scoring and names them."""
    deployment_file, folder = with_two_broken_files(lakehouse, {"max_unreadable_files": 1})
    assert_stopped(
        deployment_file,
        "two-broken",
        capsys,
        "2 file(s) could not be read (broken-1.parquet, broken-2.parquet), more than "
        "max_unreadable_files 1",
    )
    runs = load_deployment(deployment_file).runs.path
    run = read(runs).set_index("run_id").loc["two-broken"]
    assert sorted(Path(f["path"]).name for f in run["files_failed"]) == [
        "broken-1.parquet",
        "broken-2.parquet",
    ]

    (folder / "broken-2.parquet").unlink()
    assert main(["score", str(deployment_file), "--run-id", "two-broken"]) == 0  # one is allowed
    capsys.readouterr()
    run = read(runs).set_index("run_id").loc["two-broken"]
    assert run["status"] == "succeeded" and run["rows_read"] == 300


def test_an_input_of_only_unreadable_files_records_each_and_honours_the_setting(
    lakehouse: Any, capsys: Any, tmp_path: Path
) -> None:
    """Not one readable file: the run failed (exit 1) with the first file in its error and an
    empty files_failed, so the others were recorded nowhere; it now records them all, and
    `max_unreadable_files` stops it like any other incomplete input (exit 3)."""
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.parquet").write_text("not parquet")
    (corrupt / "b.parquet").write_bytes(b"")
    deployment_file = lakehouse(rows=20, files=1)
    runs = load_deployment(deployment_file).runs.path

    assert main(["score", str(deployment_file), "--input", str(corrupt), "--run-id", "bad"]) == 1
    assert "holds no readable parquet files" in capsys.readouterr().err
    run = read(runs).set_index("run_id").loc["bad"]
    assert run["status"] == "failed" and run["files_read"] == 0
    assert sorted(Path(f["path"]).name for f in run["files_failed"]) == ["a.parquet", "b.parquet"]

    edit_input = yaml.safe_load(deployment_file.read_text())
    edit_input["input"]["expect"] = {"max_unreadable_files": 0}
    deployment_file.write_text(yaml.safe_dump(edit_input))
    assert main(["score", str(deployment_file), "--input", str(corrupt), "--run-id", "bad"]) == 3
    assert "2 file(s) could not be read (a.parquet, b.parquet)" in capsys.readouterr().err
    assert read(runs).set_index("run_id").loc["bad"]["status"] == "aborted"


def test_a_manifest_may_name_files_through_a_link_in_the_input(
    lakehouse: Any, tmp_path: Path, capsys: Any
) -> None:
    """A file reached by two names is read once, under the name through no link; a manifest
    naming it through the link (`latest/...`) still finds it, and its row count is checked."""
    deployment_file = lakehouse(rows=120, files=2, input=with_manifest("raw/meters"))
    folder = Path(load_deployment(deployment_file).input.path)
    rows = row_counts(folder)
    day = folder / "2026-11-27"
    day.mkdir()
    for name in rows:
        (folder / name).rename(day / name)
    (folder / "latest").symlink_to(day, target_is_directory=True)
    manifest = tmp_path / "manifest.json"
    first = next(iter(rows))
    entries = [{"path": f"latest/{name}", "rows": count} for name, count in rows.items()]
    entries[0]["rows"] += 1
    manifest.write_text(json.dumps({"files": entries}))
    assert_stopped(
        deployment_file,
        "linked-rows",
        capsys,
        f"2026-11-27/{first} has {rows[first]:,} rows, the manifest says {rows[first] + 1:,}",
    )

    entries[0]["rows"] -= 1
    manifest.write_text(json.dumps({"files": entries}))
    assert main(["score", str(deployment_file), "--run-id", "linked"]) == 0, capsys.readouterr()
    deployment = load_deployment(deployment_file)
    scored, quarantined = read(deployment.output.path), read(deployment.quarantine.path)
    assert len(scored) + len(quarantined) == sum(rows.values())  # each row once
    assert all("/2026-11-27/" in name for name in scored["_source_file"])
