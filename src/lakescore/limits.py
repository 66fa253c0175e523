"""The deployment's `limits`: when a run has quarantined too many rows to commit predictions."""

from __future__ import annotations

import numpy as np

from lakescore.config import Limits

# How an abort by a limit ends its error: in previous_attempts, it says the attempt committed.
LIMIT_ABORTED = "no predictions were committed, only the quarantine"


def limit_exceeded(limits: Limits, rows_read: int, rows_invalid: int) -> str | None:
    if limits.max_error_rows is not None and rows_invalid > limits.max_error_rows:
        return (
            f"{rows_invalid:,} rows were quarantined (by validation or the model), more than "
            "limits.max_error_rows "
            f"({limits.max_error_rows:,}); {LIMIT_ABORTED}."
        )
    if limits.max_error_fraction is not None and rows_read:
        fraction = rows_invalid / rows_read
        if fraction > limits.max_error_fraction:
            return (
                f"{_percent(fraction)} of rows were quarantined ({rows_invalid:,} of "
                f"{rows_read:,}), more than limits.max_error_fraction "
                f"({limits.max_error_fraction:g}, that is {_percent(limits.max_error_fraction)})"
                f"; {LIMIT_ABORTED}."
            )
    return None


def _percent(fraction: float) -> str:
    """Three significant digits, without an exponent, so a small limit (0.0001) does not read
    as 0.0% (nor as 1e-02%)."""
    return np.format_float_positional(fraction * 100, precision=3, fractional=False, trim="-") + "%"
