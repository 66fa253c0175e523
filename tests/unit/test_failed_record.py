"""What a failed attempt's record says about rows earlier attempts of its run id left."""

from __future__ import annotations

from datetime import UTC, datetime

from lakescore.attempts import STOPPED_COMMITTING, ended_record
from lakescore.config import Limits
from lakescore.errors import InputError, LakescoreError
from lakescore.limits import limit_exceeded
from lakescore.runs import FAILED, RunRecord

STARTED = datetime(2026, 11, 26, tzinfo=UTC)


def failed_after(
    *statuses: str,
    errors: dict[int, str] | None = None,
    ending: LakescoreError | None = None,
) -> str:
    """The error of an attempt that failed with `ending` after attempts of `statuses`."""
    earlier = [
        {"attempt": n, "status": status, "finished_at": STARTED, "error": (errors or {}).get(n)}
        for n, status in enumerate(statuses, start=1)
    ]
    record = RunRecord("r", "d", "running", STARTED, "/in", previous_attempts=earlier)
    ending = ending or InputError("Input /in does not exist.")
    error = ended_record(record, ending, FAILED).error
    assert error is not None
    return error


def test_a_succeeded_attempts_rows_are_named_even_after_an_interrupted_one() -> None:
    error = failed_after("succeeded", "interrupted")
    assert "still hold the rows that attempt 1 of run r committed" in error
    assert "may also hold rows that attempt 2 of run r committed before it was interrupted" in error


def test_an_interrupted_attempt_before_the_succeeded_one_is_not_mentioned() -> None:
    error = failed_after("interrupted", "succeeded", "failed")
    assert "attempt 2 of run r committed" in error and "interrupted" not in error


def test_an_interrupted_attempt_alone_is_named() -> None:
    error = failed_after("interrupted")
    assert "The tables may still hold rows that attempt 1 of run r committed before it" in error


def test_an_attempt_aborted_by_a_limit_is_named_for_its_quarantine_rows() -> None:
    """An attempt aborted by a limit committed its quarantine (and took the earlier predictions
    away): a later failure names it, not the succeeded attempt before it."""
    limit = limit_exceeded(Limits(max_error_rows=0), 10, 3)
    assert limit is not None
    error = failed_after("succeeded", "aborted", "failed", errors={2: limit})
    assert "still hold the rows that attempt 2 of run r committed (it aborted at" in error


def test_an_attempt_aborted_on_an_incomplete_input_committed_nothing() -> None:
    error = failed_after(
        "succeeded", "aborted", errors={2: "Input is incomplete: the marker _READY is missing."}
    )
    assert "still hold the rows that attempt 1 of run r committed (it succeeded at" in error


def test_an_attempt_that_kept_its_versions_is_named_with_its_counts() -> None:
    """A failed attempt whose counts did not reconcile still committed: its versions say so."""
    earlier = [
        {
            "attempt": 1,
            "status": "failed",
            "finished_at": STARTED,
            "error": "Counts do not reconcile: read 10, scored 9, quarantined 0.",
            "rows_scored": 1_234,
            "rows_quarantined": 5,
            "output_version": 3,
            "quarantine_version": 2,
        }
    ]
    record = RunRecord("r", "d", "running", STARTED, "/in", previous_attempts=earlier)
    error = ended_record(record, InputError("Input /in does not exist."), FAILED).error
    assert error is not None
    assert "still hold the rows that attempt 1 of run r committed (it failed at" in error
    assert ": 1,234 predictions, 5 quarantined rows; its record is in previous_attempts)" in error


def test_an_attempt_stopped_during_its_commits_is_named_like_an_interrupted_one() -> None:
    stopped = f"Run r was terminated (SIGTERM) before it finished; {STOPPED_COMMITTING} (...)."
    error = failed_after("succeeded", "failed", errors={2: stopped})
    assert "may also hold rows that attempt 2 of run r committed before it was interrupted" in error
    assert "rows that attempt 1 of run r committed (it succeeded" in error


def test_a_small_error_fraction_limit_is_shown_as_given_not_rounded_to_zero() -> None:
    """The error read "0.4% ... more than limits.max_error_fraction (0.0%)" for a limit of
    0.0001: both shares are now shown to three significant digits, the limit also as written."""
    limit = limit_exceeded(Limits(max_error_fraction=0.0001), 20_000, 80)
    assert limit is not None
    assert limit.startswith(
        "0.4% of rows were quarantined (80 of 20,000), more than limits.max_error_fraction "
        "(0.0001, that is 0.01%)"
    )
    assert limit_exceeded(Limits(max_error_fraction=0.0001), 20_000, 2) is None


def test_an_attempt_that_left_its_commit_does_not_say_the_tables_hold_only_older_rows() -> None:
    """Its take-back failed: the table it names holds this attempt's rows, not attempt 1's."""
    own = (
        f"the quarantine commit broke; {STOPPED_COMMITTING}: taking back its commit to the "
        "predictions table failed too (a rerun of this run id replaces those rows)."
    )
    error = failed_after("succeeded", ending=LakescoreError(own))
    assert "Where this attempt's own commits did not replace them, the tables still hold" in error
    assert "The tables still hold" in failed_after("succeeded")  # this attempt left nothing
