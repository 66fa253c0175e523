"""The run's counts, taken from its staged rows: what the run record, the completeness checks,
`fail` rules and limits are decided on, without another pass over the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame

from lakescore import columns as C
from lakescore import pipeline


@dataclass(frozen=True)
class StagedCounts:
    """What the run record and the checks need, counted from the staged rows."""

    rows_read: int
    rows_scored: int
    rows_invalid: int  # failed validation
    rows_failed: int  # the model raised on them
    rows_by_file: dict[str, int]
    by_action: dict[str, dict[str, int]]
    executors: list[dict[str, Any]]

    @classmethod
    def of(cls, staged: DataFrame, validated: pipeline.Validated) -> StagedCounts:
        parts = pipeline.staged_summary(staged).collect()
        failures = {
            (r["rule"], r["column"]): int(r["rows"])
            for r in pipeline.check_failures(staged).collect()
        }
        by_action: dict[str, dict[str, int]] = {"quarantine": {}, "warn": {}, "fail": {}}
        for check in validated.checks:
            rows = failures.get((check.rule, check.column), 0)
            if rows:
                by_action[check.action][check.reason] = rows
        rows_by_file: dict[str, int] = {}
        per_executor: dict[str, dict[str, Any]] = {}
        for part in parts:
            rows_by_file[part[C.SOURCE_FILE]] = (
                rows_by_file.get(part[C.SOURCE_FILE], 0) + part["rows"]
            )
            executor = per_executor.setdefault(
                str(part[C.EXECUTOR]),
                {"executor": part[C.EXECUTOR], "tasks": set(), "rows": 0, "rows_failed": 0},
            )
            executor["tasks"].add(part[C.TASK])
            executor["rows"] += int(part["scored"])
            executor["rows_failed"] += int(part["score_failed"])
        executors = [{**e, "tasks": len(e["tasks"])} for _, e in sorted(per_executor.items())]
        rows_read = sum(int(p["rows"]) for p in parts)
        rows_scored = sum(int(p["scored"]) for p in parts)
        rows_failed = sum(int(p["score_failed"]) for p in parts)
        return cls(
            rows_read=rows_read,
            rows_scored=rows_scored,
            rows_invalid=rows_read - rows_scored - rows_failed,
            rows_failed=rows_failed,
            rows_by_file=rows_by_file,
            by_action=by_action,
            executors=executors,
        )
