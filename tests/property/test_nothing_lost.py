"""Property: whatever mixture of good rows, bad values and bad files arrives, the real job
accounts for every row and every file, and commits nothing half-way."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakescore.cli import main

LINEAGE = [
    "_run_id",
    "_model_name",
    "_model_version",
    "_model_uri",
    "_scored_at",
    "_source_file",
    "_source_file_modified_at",
]
QUARANTINE_LINEAGE = ["_run_id", "_quarantined_at", "_source_file", "_model_version"]

good_number = st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False)
bad_number = st.sampled_from([float("nan"), float("inf"), float("-inf"), -5.0, 1e308, None])
text_value = st.one_of(
    good_number.map(lambda v: f"{v:.4f}"),
    st.sampled_from(["n/a", "", "12,5", "ünïcødé ⚡", "x" * 5000, "1e400", "-1"]),
    st.text(max_size=30),
)
numeric_file = st.lists(st.one_of(good_number, good_number, bad_number), min_size=1, max_size=40)
text_file = st.lists(st.one_of(text_value, st.none()), min_size=1, max_size=40)
bad_file = st.sampled_from(["zero-byte", "garbage", "truncated"])


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def write_file(folder: Path, name: str, start: int, kwh: list[Any], as_text: bool) -> set[str]:
    keys = [f"K{start + i:06d}" for i in range(len(kwh))]
    frame = pd.DataFrame(
        {
            "meter_id": keys,
            "region": "north",
            "tariff": "smart",
            "kwh_30d": 100.0,
            "peak_ratio": 0.3,
            "temp_c": 9.0,
        }
    )
    kwh_array = pa.array(kwh, type=pa.string() if as_text else pa.float64(), from_pandas=False)
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column("kwh_7d", kwh_array)
    pq.write_table(table, folder / name)
    return set(keys)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    files=st.lists(
        st.one_of(numeric_file.map(lambda v: ("num", v)), text_file.map(lambda v: ("text", v))),
        min_size=1,
        max_size=4,
    ),
    broken=st.lists(bad_file, max_size=2),
)
def test_every_row_and_file_is_accounted_for(
    spark: Any, registry: Any, files: list[tuple[str, list[Any]]], broken: list[str]
) -> None:
    root = Path(tempfile.mkdtemp(prefix="lakescore-prop-"))
    folder = root / "raw"
    folder.mkdir()
    expected: set[str] = set()
    start = 0
    for index, (kind, values) in enumerate(files):
        expected |= write_file(folder, f"part-{index}.parquet", start, values, kind == "text")
        start += len(values)
    first = (folder / "part-0.parquet").read_bytes()
    broken_names = set()
    for index, kind in enumerate(broken):
        path = folder / f"broken-{index}.parquet"
        path.write_bytes(
            {
                "zero-byte": b"",
                "garbage": b"PAR1 not really",
                "truncated": first[: len(first) // 2],
            }[kind]
        )
        broken_names.add(path.name)
    deployment = root / "deployment.yaml"
    deployment.write_text(
        yaml.safe_dump(
            {
                "name": "property",
                "model": {
                    "uri": "models:/meter_risk@champion",
                    "tracking_uri": registry.tracking_uri,
                },
                "input": {"format": "parquet", "path": "raw", "key": "meter_id"},
                "output": {"path": "out/predictions"},
                "quarantine": {"path": "out/quarantine"},
                "runs": {"path": "out/runs"},
                "rules": [{"name": "non_negative", "expr": "kwh_7d >= 0"}],
                "scoring": {"batch_size": 16},
            }
        )
    )

    assert main(["score", str(deployment), "--run-id", "prop"]) == 0

    run = read(str(root / "out/runs")).iloc[0]
    assert run["status"] == "succeeded"
    assert run["rows_read"] == len(expected) == run["rows_scored"] + run["rows_quarantined"]
    assert run["files_read"] == len(files)
    assert {Path(f["path"]).name for f in run["files_failed"]} == broken_names
    # Each table holds exactly the rows its count says (a table without rows may not exist).
    predictions = read_or_empty(root / "out/predictions")
    quarantine = read_or_empty(root / "out/quarantine")
    assert len(predictions) == run["rows_scored"] and len(quarantine) == run["rows_quarantined"]
    assert predictions[LINEAGE].notna().all().all()
    assert quarantine[QUARANTINE_LINEAGE].notna().all().all()
    assert all(len(errors) >= 1 for errors in quarantine["_errors"])
    assert {e["stage"] for errors in quarantine["_errors"] for e in errors} <= {"validate", "score"}
    every = list(predictions["meter_id"]) + list(quarantine["meter_id"])
    assert len(every) == len(set(every)), "a key appears twice in one run"
    assert set(every) == expected


def read_or_empty(path: Path) -> pd.DataFrame:
    """The table's rows; none when the run had none to write to it (a table may not exist)."""
    if not (path / "_delta_log").exists():
        return pd.DataFrame(columns=["meter_id", "_errors", *LINEAGE, *QUARANTINE_LINEAGE])
    return read(str(path))
