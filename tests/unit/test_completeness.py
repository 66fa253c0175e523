"""The manifest a producer writes: what it must hold to be taken."""

from __future__ import annotations

import json

import pytest

from lakescore.completeness import ExpectedFile, parse_manifest


def test_a_manifest_lists_files_and_their_optional_row_counts() -> None:
    entries = [
        {"path": "a.parquet", "rows": 0},
        {"path": "b.parquet"},
        {"path": "c.parquet", "rows": 1000.0},  # pandas' to_json of a float column
        {"path": "d.parquet", "rows": " 7"},
    ]
    assert parse_manifest(json.dumps({"files": entries}), "m.json") == (
        ExpectedFile("a.parquet", 0),
        ExpectedFile("b.parquet"),
        ExpectedFile("c.parquet", 1000),
        ExpectedFile("d.parquet", 7),
    )


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"path": "a.parquet", "rows": 99.7}, "rows 99.7 of a.parquet"),
        ({"path": "a.parquet", "rows": True}, "rows True of a.parquet"),
        ({"path": "a.parquet", "rows": -5}, "rows -5 of a.parquet"),
        ({"path": "a.parquet", "rows": "1e3"}, "rows '1e3' of a.parquet"),
        ({"path": 7, "rows": 1}, "path 7 is not a file name"),
        ({"path": "", "rows": 1}, "path '' is not a file name"),
    ],
)
def test_a_row_count_or_path_that_is_not_one_is_refused(
    entry: dict[str, object], named: str
) -> None:
    """int() made 99.7 rows 99 and `true` one row, and took -5: a producer's error passed
    unseen, or failed the run as a row count the input did not match."""
    with pytest.raises(ValueError, match=f"Manifest m.json is not .*{named}"):
        parse_manifest(json.dumps({"files": [entry]}), "m.json")
