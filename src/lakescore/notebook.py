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
