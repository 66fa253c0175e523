"""A run is `succeeded` only when its counts reconcile: every row read was scored or quarantined."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakescore.runs import RunRecord

STARTED = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("read", "scored", "quarantined", "reconciles"),
    [
        (600, 590, 10, True),
        (600, 600, None, True),  # nothing to quarantine
        (600, None, 600, True),  # every row quarantined
        (0, None, None, True),
        (600, 590, 9, False),  # a row lost
        (600, 591, 10, False),  # a row counted twice
        (None, None, None, False),  # never counted
        (None, 0, 0, False),
    ],
)
def test_counts_reconcile_only_when_every_row_read_is_accounted_for(
    read: int | None, scored: int | None, quarantined: int | None, reconciles: bool
) -> None:
    record = RunRecord(
        "r",
        "d",
        "running",
        STARTED,
        "/in",
        rows_read=read,
        rows_scored=scored,
        rows_quarantined=quarantined,
    )
    assert record.reconciles() is reconciles
