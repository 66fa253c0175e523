"""Human and JSON renderings of runs and deployments for the command line."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from lakescore.config import Deployment
from lakescore.redaction import scrub


def to_json(value: Any) -> str:
    """JSON for stdout, with any credential in a URI or parameter masked."""
    return scrub(json.dumps(value, indent=2, sort_keys=True, default=_default))


_FAILED_FILES_SHOWN = 10  # the rest are in the run record (and the failed-files table)


def _say(text: str) -> None:
    """Print a line of a summary without credentials: a table or input path may carry them
    (`s3a://KEY:SECRET@bucket/…`), and scheduled jobs' output is kept in logs."""
    print(scrub(text))


def print_run(record: dict[str, Any], deployment: Deployment) -> None:
    """A short summary: counts, reasons, model version and table paths."""
    _say(f"run {record['run_id']} {record['status']}")
    if record.get("started_at"):
        earlier = ", ".join(
            f"{a.get('attempt')} {a.get('status')}" for a in record.get("previous_attempts") or []
        )
        attempt = f"attempt {record.get('attempt') or 1}" + (
            f"; earlier: {earlier}" if earlier else ""
        )
        _say(f"  started      {_time(record['started_at'])}, took {_took(record)} ({attempt})")
    if record.get("model_uri"):
        version = record.get("model_version")
        pinned = f"version {version}" if version else "not resolved"
        requested = record.get("requested_model_uri")
        if requested and requested != record["model_uri"]:
            pinned += f", from {requested}"
        _say(f"  model        {record['model_uri']} ({pinned})")
    input_version = record.get("input_version")
    _say(
        f"  read         {_n(record.get('rows_read'))} rows from {_n(record.get('files_read'))} "
        f"file(s) in {record['input']}"
        + (f" (version {input_version})" if input_version is not None else "")
    )
    failed = record.get("files_failed") or []
    if failed:
        _say(f"  not read     {len(failed):,} file(s); their rows are in no table:")
        for file in failed[:_FAILED_FILES_SHOWN]:
            _say(f"    {file['path']}: {file['error']}")
        if len(failed) > _FAILED_FILES_SHOWN:
            _say(f"    ... and {len(failed) - _FAILED_FILES_SHOWN:,} more (runs show --json)")
    _say(f"  scored       {_n(record.get('rows_scored'))} rows -> {deployment.output.path}")
    _say(
        f"  quarantined  {_n(record.get('rows_quarantined'))} rows -> {deployment.quarantine.path}"
    )
    for reason, count in sorted((record.get("quarantined_by_reason") or {}).items()):
        _say(f"    {reason:<34} {count:>10,}")
    # A run whose counts did not reconcile is failed, yet its predictions are committed (an
    # aborted rerun's predictions commit removes the earlier attempt's: none scored).
    scored = record.get("status") == "succeeded" or (record.get("rows_scored") or 0) > 0
    kept = "scored anyway" if scored else "would have been scored"
    for rule, count in sorted((record.get("warnings_by_rule") or {}).items()):
        _say(f"  warned       {rule}: {_rows(count)} ({kept})")
    for executor in record.get("executors") or []:
        _say(
            f"  executor     {executor['executor']}: {_rows(executor['rows'])} in "
            f"{executor['tasks']} task(s)"
        )
    _say(f"  runs table   {deployment.runs.path}")
    if record.get("error"):
        _say(f"  error        {record['error']}")


def format_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no runs yet"
    lines = [
        f"{'run_id':<34} {'status':<10} {'read':>10} {'scored':>10} {'quarantined':>11} "
        f"{'files not read':>14}  {'started (UTC)':<20} {'took':>8}  model"
    ]
    for run in runs:
        failed = run.get("files_failed") or []
        # A run that failed before listing its input read no file and failed on none.
        not_read = _n(len(failed)) if failed or run.get("files_read") is not None else "-"
        lines.append(
            f"{run['run_id']:<34} {run['status']:<10} {_n(run.get('rows_read')):>10} "
            f"{_n(run.get('rows_scored')):>10} {_n(run.get('rows_quarantined')):>11} "
            f"{not_read:>14}  {_time(run.get('started_at')):<20} {_took(run):>8}  "
            f"{run.get('model_uri') or ''}"
        )
    return "\n".join(lines)


def _location(section: dict[str, Any]) -> str:
    """A section's catalog table, else its folder (the shown deployment has only the one set)."""
    return str(section.get("table") or section["path"])


def print_deployment(shown: dict[str, Any]) -> None:
    deployment, model = shown["deployment"], shown["model"]
    _say(f"deployment {deployment['name']} ({deployment['source_file']})")
    _say(f"  model      {model['requested_uri']} -> {model['pinned_uri']}")
    _say(f"  input      {deployment['input']['format']} {_location(deployment['input'])}")
    for table in ("output", "quarantine", "runs"):
        _say(f"  {table:<10} {_location(deployment[table])}")
    _say("  model inputs:")
    for column in model["inputs"] or []:
        optional = "" if column["required"] else " (optional)"
        _say(f"    {column['name']:<24} {column['spark_type']}{optional}")
    if model["inputs"] is None:
        _say("    (no signature: every input column except the key is sent to the model)")
    _say("  model outputs:")
    for column in model["outputs"]:
        optional = "" if column["required"] else " (optional: may be null)"
        _say(f"    {column['name']:<24} {column['spark_type']}{optional}")
    for rule in deployment["rules"]:
        _say(f"  rule {rule['name']} [{rule['action']}]: {rule['expr']}")


def _time(value: Any) -> str:
    """`2026-11-26T10:40:24Z`: one token, so a column of them splits cleanly."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else "-"


def _took(run: dict[str, Any]) -> str:
    started, finished = run.get("started_at"), run.get("finished_at")
    if not isinstance(started, datetime) or not isinstance(finished, datetime):
        return "-"
    seconds = round((finished - started).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)
