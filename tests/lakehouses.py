"""Small lakehouses built by hand, for tests that need an input or a deployment file the
`lakehouse` fixture does not make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def parquet_lakehouse(folder: Path, model: Path, *tables: pa.Table, **overrides: Any) -> Path:
    """Write `tables` as Parquet files under `folder/raw` and a deployment file scoring them with
    the model at `model` (key `id`, one batch); return the deployment file."""
    (folder / "raw").mkdir(parents=True)
    for index, part in enumerate(tables):
        pq.write_table(part, folder / "raw" / f"part-{index}.parquet")
    deployment = {
        "name": "types",
        "model": {"uri": str(model)},
        "input": {"format": "parquet", "path": "raw", "key": "id"},
        "output": {"path": "out/predictions"},
        "quarantine": {"path": "out/quarantine"},
        "runs": {"path": "out/runs"},
        "scoring": {"batch_size": 1000},
        **overrides,
    }
    file = folder / "deployment.yaml"
    file.write_text(yaml.safe_dump(deployment))
    return file


def sharing_runs_table(deployment_file: Path, folder: Path) -> Path:
    """A deployment file for `other-deployment`: the same input and runs table as
    `deployment_file`, its own output and quarantine tables (under `scored-other/`)."""
    settings = yaml.safe_load(deployment_file.read_text())
    settings["name"] = "other-deployment"
    for key in ("output", "quarantine"):
        settings[key]["path"] = settings[key]["path"].replace("scored/", "scored-other/")
    other = folder / "other.yaml"
    other.write_text(yaml.safe_dump(settings, sort_keys=False))
    return other
