"""Unreadable files and schema drift: the run goes on, every readable row is scored or
quarantined with a reason naming the column, and every bad file is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment
from lakescore.demo import make_meter_frame


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def keys_in_tables(deployment: Any) -> tuple[set[str], set[str]]:
    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)
    assert predictions["meter_id"].is_unique and quarantine["meter_id"].is_unique
    return set(predictions["meter_id"]), set(quarantine["meter_id"])


def test_unreadable_files_are_recorded_and_the_rest_is_scored(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=300, files=3, bad=False)
    deployment = load_deployment(deployment_file)
    folder = Path(deployment.input.path)
    good = sorted(folder.glob("*.parquet"))
    expected = set(pq.read_table(folder).column("meter_id").to_pylist())
    whole = good[0].read_bytes()
    (folder / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (folder / "my notes.parquet").write_text("this is not parquet\n")
    (folder / "empty.parquet").write_bytes(b"")
    (folder / "_SUCCESS").write_text("")

    assert main(["score", str(deployment_file), "--run-id", "bad-files"]) == 0
    summary = capsys.readouterr().out
    assert "not read     3 file(s)" in summary and "truncated.parquet: " in summary
    assert main(["runs", "list", str(deployment_file)]) == 0
    [header, row] = capsys.readouterr().out.splitlines()
    assert "files not read" in header and row.split()[5] == "3"

    scored, quarantined = keys_in_tables(deployment)
    assert scored | quarantined == expected and not scored & quarantined
    run = read(deployment.runs.path).iloc[0]
    assert run["files_read"] == 3
    failed = {Path(f["path"]).name: f["error"] for f in run["files_failed"]}
    # Named as listed (a space is a space); _source_file would say my%20notes.parquet.
    assert set(failed) == {"truncated.parquet", "my notes.parquet", "empty.parquet"}
    assert all(failed.values())
    table = read(deployment.quarantine.path + "_failed_files")
    assert sorted(Path(p).name for p in table["path"]) == sorted(failed)
    assert set(table["_run_id"]) == {"bad-files"}


def score_deleting_after_listing(
    deployment_file: Path, doomed: Path, run_id: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, str]:
    """Score, deleting `doomed` once the run has listed its input; exit code and stderr."""
    marker = deployment_file.parent / "listed.marker"
    resume = deployment_file.parent / "listed.resume"
    monkeypatch.setenv("LAKESCORE_FAULT_PAUSE_AT", "after_listing")
    monkeypatch.setenv("LAKESCORE_FAULT_MARKER", str(marker))
    monkeypatch.setenv("LAKESCORE_FAULT_RESUME_FILE", str(resume))
    monkeypatch.setenv("LAKESCORE_FAULT_PAUSE_SECONDS", "120")  # a lost resume cannot hang

    def delete_when_listed() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        doomed.unlink()
        resume.touch()  # the run goes on at once, the file gone

    deleter = threading.Thread(target=delete_when_listed)
    deleter.start()
    code = main(["score", str(deployment_file), "--run-id", run_id])
    deleter.join()
    return code, capsys.readouterr().err


SKIPPING_SETTINGS = ("spark.sql.files.ignoreCorruptFiles", "spark.sql.files.ignoreMissingFiles")


@pytest.fixture(params=[False, True], ids=["default-session", "session-skipping-bad-files"])
def skipping_session(request: Any, spark: Any) -> Iterator[bool]:
    """The shared session as Spark makes it, or as a notebook or cluster might have it: set to
    skip corrupt and missing files, which would leave their rows in no table, unrecorded. The
    run must turn that off for itself and put the session's settings back."""
    if not request.param:
        yield False
        return
    before = {key: spark.conf.get(key, None) for key in SKIPPING_SETTINGS}
    for key in SKIPPING_SETTINGS:
        spark.conf.set(key, "true")
    try:
        yield True
        after = {key: spark.conf.get(key) for key in SKIPPING_SETTINGS}
    finally:  # later tests share the session
        for key, value in before.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)
    assert after == dict.fromkeys(SKIPPING_SETTINGS, "true")  # the run put them back


def test_a_file_deleted_after_listing_is_recorded_and_its_rows_are_in_no_table(
    lakehouse: Any,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    skipping_session: bool,
) -> None:
    deployment_file = lakehouse(rows=300, files=3, bad=False)
    deployment = load_deployment(deployment_file)
    files = sorted(Path(deployment.input.path).glob("*.parquet"))
    doomed = files[1]
    doomed_keys = set(pq.read_table(doomed).column("meter_id").to_pylist())
    code, _ = score_deleting_after_listing(deployment_file, doomed, "deleted", monkeypatch, capsys)

    assert code == 0
    scored, quarantined = keys_in_tables(deployment)
    assert not (scored | quarantined) & doomed_keys
    assert len(scored | quarantined) == 300 - len(doomed_keys)
    run = read(deployment.runs.path).iloc[0]
    assert [Path(f["path"]).name for f in run["files_failed"]] == [doomed.name]
    assert run["rows_read"] == run["rows_scored"] + run["rows_quarantined"]


def test_schema_drift_is_reconciled_per_row(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(rows=60, files=1, bad=False)
    deployment = load_deployment(deployment_file)
    folder = Path(deployment.input.path)
    base = make_meter_frame(50, seed=3).drop(columns=["fault"])

    def part(offset: int) -> Any:
        frame = base.copy()
        frame["meter_id"] = [f"D{offset}-{i}" for i in range(len(frame))]
        return frame

    as_text = part(1)
    as_text["kwh_7d"] = [f"{v:.3f}" for v in as_text["kwh_7d"]]
    as_text.loc[:4, "kwh_7d"] = "n/a"
    pq.write_table(pa.Table.from_pandas(as_text, preserve_index=False), folder / "text.parquet")
    as_decimal = pa.Table.from_pandas(part(2), preserve_index=False)
    index = as_decimal.schema.get_field_index("temp_c")
    decimals = pa.array(np.round(as_decimal["temp_c"].to_numpy(), 2).astype(str)).cast(
        pa.decimal128(10, 2)
    )
    pq.write_table(as_decimal.set_column(index, "temp_c", decimals), folder / "decimal.parquet")
    missing = part(3).drop(columns=["peak_ratio"])
    pq.write_table(pa.Table.from_pandas(missing, preserve_index=False), folder / "missing.parquet")
    extra = part(4).assign(note="hello")
    pq.write_table(pa.Table.from_pandas(extra, preserve_index=False), folder / "extra.parquet")
    renamed = part(5).rename(columns={"kwh_30d": "KWh_30d"})
    pq.write_table(pa.Table.from_pandas(renamed, preserve_index=False), folder / "case.parquet")

    assert main(["score", str(deployment_file), "--run-id", "drift"]) == 0
    capsys.readouterr()

    predictions = read(deployment.output.path)
    quarantine = read(deployment.quarantine.path)
    reasons = {
        row["meter_id"]: {(e["rule"], e["column"]) for e in row["_errors"]}
        for _, row in quarantine.iterrows()
    }
    assert len(predictions) + len(quarantine) == 60 + 5 * 50
    assert {k for k, r in reasons.items() if ("type_mismatch", "kwh_7d") in r} == {
        f"D1-{i}" for i in range(5)
    }
    assert {k for k, r in reasons.items() if ("required_null", "peak_ratio") in r} == {
        f"D3-{i}" for i in range(50)
    }
    scored = set(predictions["meter_id"])
    assert {f"D2-{i}" for i in range(50)} <= scored  # decimals fit the double input
    assert {f"D4-{i}" for i in range(50)} <= scored  # an extra column changes nothing
    assert {f"D5-{i}" for i in range(50)} <= scored  # KWh_30d is kwh_30d
    assert {f"D1-{i}" for i in range(5, 50)} <= scored  # numeric text casts cleanly
    assert read(deployment.runs.path).iloc[0]["files_failed"].tolist() == []


def test_a_delta_data_file_deleted_after_listing_fails_the_run_naming_it(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch, skipping_session: bool
) -> None:
    """A Delta version is read whole or not at all: the run fails at once, naming the file,
    instead of reading the table again without it (which Delta cannot do)."""
    deployment_file = lakehouse(rows=300, files=3, bad=False, fmt="delta")
    deployment = load_deployment(deployment_file)
    doomed = sorted(Path(deployment.input.path).glob("*.parquet"))[0]

    code, err = score_deleting_after_listing(
        deployment_file, doomed, "vacuumed", monkeypatch, capsys
    )

    assert code == 1
    assert doomed.name in err and "Delta table" in err
    assert "reading the input again" not in err
    assert not Path(deployment.output.path, "_delta_log").exists()
    run = read(deployment.runs.path).iloc[0]
    assert run["status"] == "failed" and doomed.name in run["error"]


@pytest.mark.parametrize("skipping_session", [True], indirect=True, ids=["session-skipping"])
def test_a_file_corrupt_in_its_second_row_group_is_recorded_in_a_skipping_session(
    lakehouse: Any, capsys: Any, skipping_session: bool
) -> None:
    """Its first row group reads; a session that skips corrupt files would then drop the rest
    of it without a word, and the run would reconcile without those rows."""
    deployment_file = lakehouse(rows=300, files=2, bad=False)
    deployment = load_deployment(deployment_file)
    folder = Path(deployment.input.path)
    expected = set(pq.read_table(folder).column("meter_id").to_pylist())
    spoiled_in_its_second_row_group(folder / "corrupt.parquet", "extra")

    assert main(["score", str(deployment_file), "--run-id", "corrupt"]) == 0
    capsys.readouterr()

    scored, quarantined = keys_in_tables(deployment)
    assert scored | quarantined == expected  # none of the corrupt file's rows
    run = read(deployment.runs.path).iloc[0]
    assert [Path(f["path"]).name for f in run["files_failed"]] == ["corrupt.parquet"]
    assert run["rows_read"] == len(expected) == run["rows_scored"] + run["rows_quarantined"]
    # Not only Spark's "error while reading file": what is wrong with it.
    assert "Cause: java.io.IOException" in run["files_failed"][0]["error"]


def spoiled_in_its_second_row_group(file: Path, meter_ids: str) -> bytes:
    """Write 600 rows to `file` in row groups of 200, spoil a page of the second (its footer
    stays readable) and return the file as written, unspoiled."""
    extra = make_meter_frame(600, seed=7).drop(columns=["fault"])
    extra["meter_id"] = [f"{meter_ids}-{i}" for i in range(len(extra))]
    pq.write_table(pa.Table.from_pandas(extra, preserve_index=False), file, row_group_size=200)
    page = pq.ParquetFile(file).metadata.row_group(1).column(1).data_page_offset
    whole = file.read_bytes()
    spoiled = bytearray(whole)
    spoiled[page + 16 : page + 400] = np.random.default_rng(1).bytes(384)
    file.write_bytes(bytes(spoiled))
    return whole


def test_a_file_whose_read_failed_once_is_read_again_not_left_out(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read error storage does not repeat (a reset connection; `local[*]` retries no task)
    left the file out as if corrupt: its rows were in no table, for a blip."""
    import lakescore.runner as runner

    deployment_file = lakehouse(rows=300, files=2, bad=False)
    deployment = load_deployment(deployment_file)
    blip = Path(deployment.input.path) / "blip.parquet"
    whole = spoiled_in_its_second_row_group(blip, "blip")
    named = runner.failed_file_in

    def storage_answers_again(*args: Any) -> Any:
        found = named(*args)
        blip.write_bytes(whole)
        return found

    monkeypatch.setattr(runner, "failed_file_in", storage_answers_again)
    assert main(["score", str(deployment_file), "--run-id", "blip"]) == 0
    assert "blip.parquet failed while being read, then read" in capsys.readouterr().err

    scored, quarantined = keys_in_tables(deployment)
    assert {f"blip-{i}" for i in range(600)} <= scored | quarantined
    run = read(deployment.runs.path).iloc[0]
    assert run["files_failed"].tolist() == []
    assert run["rows_read"] == 900 == run["rows_scored"] + run["rows_quarantined"]


def test_a_file_of_nanosecond_timestamps_is_recorded_with_its_column_and_the_remedy(
    lakehouse: Any, capsys: Any
) -> None:
    """pyarrow's and pandas' default Parquet keeps nanoseconds, which Spark cannot read: Spark's
    error names neither the column nor what to do."""
    deployment_file = lakehouse(rows=100, files=1, bad=False)
    deployment = load_deployment(deployment_file)
    folder = Path(deployment.input.path)
    table = pq.read_table(next(folder.glob("*.parquet")))
    read_at = pa.array([1_700_000_000_123_456_789] * len(table), pa.timestamp("ns"))
    pq.write_table(table.append_column("read_at", read_at), folder / "nanos.parquet")

    assert main(["score", str(deployment_file), "--run-id", "nanos"]) == 0
    capsys.readouterr()

    [failed] = read(deployment.runs.path).iloc[0]["files_failed"]
    assert Path(failed["path"]).name == "nanos.parquet"
    assert "TIMESTAMP(NANOS" in failed["error"]  # Spark's own words first
    assert "Column(s) read_at hold nanosecond timestamps" in failed["error"]
    assert "coerce_timestamps='us'" in failed["error"]
