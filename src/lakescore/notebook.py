"""Helpers for Databricks-style notebooks that also run anywhere else."""

from __future__ import annotations

import os
from typing import Any


def widget(dbutils: Any, name: str, default: str) -> str:
    """A text widget on Databricks (`dbutils` given); elsewhere the environment variable
    `LAKESCORE_<NAME>`, or the default."""
    if dbutils is None:
        return os.environ.get(f"LAKESCORE_{name.upper()}", default)
    dbutils.widgets.text(name, default)
    return str(dbutils.widgets.get(name))


def run_id_widget(dbutils: Any) -> str | None:
    """The `run_id` widget: None (a new run id) when it is left blank, or when there is no
    `LAKESCORE_RUN_ID`. A variable set but empty stays "" and is refused by the run, as the
    command line refuses `--run-id ""`: a scheduler's unset `$RUN_ID` would otherwise give
    retries new ids, which no longer replace each other's rows."""
    given = widget(dbutils, "run_id", "")
    if given:
        return given
    return "" if dbutils is None and "LAKESCORE_RUN_ID" in os.environ else None
