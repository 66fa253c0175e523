"""Is the input complete? Compare what was found with what the deployment expects. Pure.

`input.expect` declares a complete input: a minimum number of files and rows, a marker file
(such as `_SUCCESS`) that the producer writes last, and/or a manifest of expected files with
their row counts. A run on an incomplete input stops with nothing committed (exit 3): before
scoring when the listing shows it, after the scoring pass for row counts, which it counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExpectedFile:
    name: str
    rows: int | None = None


def parse_manifest(text: str, source: str) -> tuple[ExpectedFile, ...]:
    """`{"files": [{"path": "part-0.parquet", "rows": 100}, ...]}` (rows optional)."""
    try:
        data = json.loads(text)
        entries = data["files"] if isinstance(data, dict) else data
        return tuple(_expected_file(entry) for entry in entries)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f'Manifest {source} is not {{"files": [{{"path": ..., "rows": ...}}]}}: {exc}'
        ) from exc


def _expected_file(entry: Mapping[str, object]) -> ExpectedFile:
    """One entry; a row count is a whole number >= 0, as a number or text (`1000`, `1000.0`
    as pandas writes it, `"1000"`): int() made 99.7 rows 99 and `true` one row, so a
    producer's error went unseen."""
    path, rows = entry["path"], entry.get("rows")
    if not isinstance(path, str) or not path:
        raise ValueError(f"path {path!r} is not a file name")
    return ExpectedFile(path, None if rows is None else _row_count(rows, path))


def _row_count(rows: object, path: str) -> int:
    whole = (
        rows
        if isinstance(rows, int) and not isinstance(rows, bool)
        else int(rows)
        if isinstance(rows, float) and rows.is_integer()
        else int(rows.strip())
        if isinstance(rows, str) and rows.strip().isdigit()
        else None
    )
    if whole is None or whole < 0:
        raise ValueError(f"rows {rows!r} of {path} is not a row count (a whole number >= 0)")
    return whole


def missing_before_reading(
    found: Sequence[str],
    min_files: int | None,
    marker_present: bool | None,
    marker: str | None,
    manifest: Sequence[ExpectedFile] | None,
    unreadable: Sequence[str] = (),
    max_unreadable: int | None = None,
    manifest_path: str | None = None,
) -> list[str]:
    """What is missing judging by the file listing alone (`found` holds relative names of the
    readable files, `unreadable` those of the files that could not be read). A `manifest` of
    None is one expected at `manifest_path` and not written yet: the producer writes it last,
    like a marker."""
    problems = []
    if manifest is None:
        problems.append(f"manifest {manifest_path} is missing or still empty")
    if marker is not None and not marker_present:
        problems.append(f"marker file {marker} is missing")
    if min_files is not None and len(found) < min_files:
        problems.append(f"{len(found)} readable file(s), fewer than min_files {min_files}")
    if max_unreadable is not None and len(unreadable) > max_unreadable:
        problems.append(
            f"{len(unreadable)} file(s) could not be read ({listed(unreadable)}), more than "
            f"max_unreadable_files {max_unreadable}"
        )
    listed_names = set(found)
    absent = [f.name for f in manifest or () if f.name not in listed_names]
    if absent:
        problems.append(f"manifest file(s) not found or unreadable: {listed(absent)}")
    return problems


def listed(names: Sequence[str], shown: int = 5) -> str:
    """The first `shown` names, and how many more, for a one-sentence error."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def missing_after_counting(
    rows_read: int,
    min_rows: int | None,
    manifest: Sequence[ExpectedFile],
    rows_by_file: Mapping[str, int],
) -> list[str]:
    """What is missing judging by row counts (`rows_by_file` keyed by relative name)."""
    problems = []
    if min_rows is not None and rows_read < min_rows:
        problems.append(f"{rows_read:,} rows, fewer than min_rows {min_rows:,}")
    for expected in manifest:
        if expected.rows is None:
            continue
        got = rows_by_file.get(expected.name, 0)
        if got != expected.rows:
            problems.append(
                f"{expected.name} has {got:,} rows, the manifest says {expected.rows:,}"
            )
    return problems
