"""What the record of an attempt that did not succeed says about the rows earlier attempts of
its run id left in the tables (pure: from the records alone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lakescore.errors import LakescoreError, LimitExceededError
from lakescore.limits import LIMIT_ABORTED
from lakescore.redaction import scrub
from lakescore.runs import ABORTED, FAILED, INTERRUPTED, SUCCEEDED, RunRecord

# How a stop during the commits says that its rows may be in the tables.
STOPPED_COMMITTING = "it was committing, and the tables may hold rows it committed"
# ... and that they are not: every commit that landed was taken back.
TOOK_BACK_COMMITS = "it was committing, and took back every commit it made"


def ended_record(record: RunRecord, exc: LakescoreError, status: str) -> RunRecord:
    """The record of an attempt that failed or aborted. A failed attempt changes neither table,
    so rows an earlier attempt of the run id committed are still there: the error says so,
    since this record replaces that attempt's (which stays in `previous_attempts`)."""
    error = scrub(str(exc))
    attempts = list(record.previous_attempts or [])
    finished = [i for i, a in enumerate(attempts) if _committed(a)]
    since = finished[-1] + 1 if finished else 0
    interrupted = [a for a in attempts[since:] if _may_have_committed(a)]
    if not isinstance(exc, LimitExceededError):
        if finished:
            kept = attempts[finished[-1]]
            # But where this attempt's own commits, which it may have left, replaced them.
            hold = (
                "Where this attempt's own commits did not replace them, the tables"
                if STOPPED_COMMITTING in error
                else "The tables"
            )
            error += (
                f" {hold} still hold the rows that attempt {kept.get('attempt')} of run "
                f"{record.run_id} committed (it {kept.get('status')} at "
                f"{kept.get('finished_at')}{_counts(kept)}; its record is in previous_attempts)."
            )
        if interrupted:
            error += (
                (" They may also hold" if finished else " The tables may still hold")
                + f" rows that attempt {interrupted[-1].get('attempt')} of run {record.run_id} "
                "committed before it was interrupted or failed; a successful rerun of this run "
                "id replaces them."
            )
    return record.with_(status=status, error=error, finished_at=datetime.now(UTC))


def _committed(attempt: dict[str, Any]) -> bool:
    """Whether an earlier attempt's rows are in the tables. An attempt aborted by a limit
    committed its quarantine (and took back earlier predictions); one aborted on an incomplete
    input committed nothing. Records written before attempts kept their Delta versions tell
    it by their status and error only."""
    if attempt.get("output_version") is not None or attempt.get("quarantine_version") is not None:
        return True
    status, error = attempt.get("status"), attempt.get("error") or ""
    return status == SUCCEEDED or (status == ABORTED and LIMIT_ABORTED in error)


def _may_have_committed(attempt: dict[str, Any]) -> bool:
    """An attempt killed, stopped during its commits, or failed with a commit it could not
    take back, may have left rows behind."""
    status, error = attempt.get("status"), attempt.get("error") or ""
    return status == INTERRUPTED or (status == FAILED and STOPPED_COMMITTING in error)


def _counts(attempt: dict[str, Any]) -> str:
    """`: 590 predictions, 10 quarantined rows`, as far as the attempt's record has them."""
    parts = [
        f"{attempt[name]:,} {label}"
        for name, label in (
            ("rows_scored", "predictions"),
            ("rows_quarantined", "quarantined rows"),
        )
        if attempt.get(name) is not None
    ]
    return ": " + ", ".join(parts) if parts else ""
