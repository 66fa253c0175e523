"""What a rerun keeps of the attempt before it, in `previous_attempts`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from lakescore.runs import RunRecord, next_attempt

STARTED = datetime(2026, 11, 26, tzinfo=UTC)


def earlier_with(unreadable: int) -> dict[str, object]:
    files = [{"path": f"/in/part-{i}.parquet", "error": "not parquet"} for i in range(unreadable)]
    record = RunRecord(
        "r",
        "d",
        "succeeded",
        STARTED,
        "/in",
        files_read=5,
        files_failed=files,
        quarantined_by_reason={"usage_non_negative": 3},
    )
    return asdict(record)


def test_an_attempts_files_and_reasons_are_kept() -> None:
    [kept] = next_attempt(
        RunRecord("r", "d", "running", STARTED, "/in"), earlier_with(2)
    ).previous_attempts
    assert kept["files_read"] == 5 and kept["quarantined_by_reason"] == {"usage_non_negative": 3}
    assert [f["path"] for f in kept["files_failed"]] == ["/in/part-0.parquet", "/in/part-1.parquet"]


def test_the_files_an_attempt_keeps_are_bounded() -> None:
    """Every later record carries the summary again; the failed-files table has every file."""
    [kept] = next_attempt(
        RunRecord("r", "d", "running", STARTED, "/in"), earlier_with(150)
    ).previous_attempts
    assert len(kept["files_failed"]) == 100  # as the README says
    assert kept["files_failed"][0]["path"] == "/in/part-0.parquet"
