"""Fault points: a misspelt one fails loudly instead of never pausing a test's run."""

from __future__ import annotations

import pytest

from lakescore.faults import POINTS, fault_point


def test_a_known_point_without_a_pause_set_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAKESCORE_FAULT_PAUSE_AT", raising=False)
    for point in POINTS:
        fault_point(point)


def test_an_unknown_point_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown fault point 'scorin'; known: after_listing"):
        fault_point("scorin")
