"""The benchmark's input: a smart-meter-like table in Parquet, generated here and cached by size.

One row per meter: a key (`meter_id`), 20 numeric features and 2 string categoricals. About 1%
of the rows are bad in one of five ways (a null feature, NaN, ±infinity, negative usage, a null
category); lakescore quarantines them, the reference scorers score them as they are.
Files are generated one at a time, so memory stays flat even at 8M rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Bump when the generated data changes, so cached inputs are rebuilt.
GENERATOR_VERSION = 1

KEY = "meter_id"
NUMERIC: tuple[str, ...] = (
    "kwh_1d",
    "kwh_7d",
    "kwh_30d",
    "kwh_90d",
    "kwh_365d",
    "peak_kw_30d",
    "base_load_kw",
    "peak_ratio",
    "night_ratio",
    "weekend_ratio",
    "voltage_mean",
    "voltage_std",
    "power_factor",
    "temp_c_7d",
    "hdd_30d",
    "cdd_30d",
    "outage_min_30d",
    "read_gaps_30d",
    "tamper_events_90d",
    "account_age_y",
)
CATEGORICAL: tuple[str, ...] = ("region", "tariff")
FEATURES: tuple[str, ...] = (*NUMERIC, *CATEGORICAL)
LABEL = "fault"

REGIONS = ("north", "north_east", "east", "south_east", "south", "south_west", "west", "central")
TARIFFS = ("standard", "economy7", "smart", "ev")

# Rows made bad on purpose, and the rule that catches the negative-usage kind.
BAD_FRACTION = 0.01
BAD_KINDS = ("null", "nan", "infinite", "negative", "null_category")
USAGE_RULE = "kwh_7d >= 0 AND kwh_30d >= 0"
_NEGATIVE_COLUMNS = ("kwh_7d", "kwh_30d")

ROWS_PER_FILE = 500_000  # about 90 MB of Snappy Parquet per file
ROW_GROUP_ROWS = 131_072


def meter_columns(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Clean feature values (and a fault label) for `rows` meters."""
    daily = rng.gamma(4.0, 2.5, rows)  # kWh per day
    temp = rng.normal(10.0, 7.0, rows)
    cols: dict[str, np.ndarray] = {
        "kwh_1d": daily * rng.lognormal(0.0, 0.25, rows),
        "kwh_7d": daily * 7 * rng.lognormal(0.0, 0.10, rows),
        "kwh_30d": daily * 30 * rng.lognormal(0.0, 0.08, rows),
        "kwh_90d": daily * 90 * rng.lognormal(0.0, 0.06, rows),
        "kwh_365d": daily * 365 * rng.lognormal(0.0, 0.05, rows),
        "peak_kw_30d": daily / 24 * rng.uniform(2.0, 6.0, rows),
        "base_load_kw": daily / 24 * rng.uniform(0.2, 0.6, rows),
        "peak_ratio": rng.beta(2.0, 5.0, rows),
        "night_ratio": rng.beta(2.0, 6.0, rows),
        "weekend_ratio": rng.beta(3.0, 5.0, rows),
        "voltage_mean": rng.normal(230.0, 3.0, rows),
        "voltage_std": rng.gamma(2.0, 0.8, rows),
        "power_factor": rng.beta(20.0, 2.0, rows),
        "temp_c_7d": temp,
        "hdd_30d": np.clip(15.5 - temp, 0.0, None) * 30 * rng.uniform(0.8, 1.2, rows),
        "cdd_30d": np.clip(temp - 22.0, 0.0, None) * 30 * rng.uniform(0.8, 1.2, rows),
        "outage_min_30d": rng.exponential(20.0, rows) * (rng.random(rows) < 0.2),
        "read_gaps_30d": rng.poisson(0.5, rows).astype("float64"),
        "tamper_events_90d": rng.poisson(0.05, rows).astype("float64"),
        "account_age_y": rng.uniform(0.0, 25.0, rows),
    }
    region = rng.integers(0, len(REGIONS), rows)
    tariff = rng.integers(0, len(TARIFFS), rows)
    logit = (
        -2.0
        + 0.8 * (cols["voltage_std"] - 1.6)
        + 3.0 * (cols["peak_ratio"] - 0.29)
        + 0.02 * cols["outage_min_30d"]
        + 1.5 * cols["tamper_events_90d"]
        + 0.3 * cols["read_gaps_30d"]
        - 0.04 * cols["account_age_y"]
        + 0.4 * (tariff == 3)
        + 0.1 * region
    )
    cols[LABEL] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    cols["_region_index"] = region
    cols["_tariff_index"] = tariff
    return cols


def training_frame(rows: int = 200_000, seed: int = 1) -> Any:
    """Clean rows with the label, as a pandas DataFrame (strings as object columns)."""
    cols = meter_columns(np.random.default_rng(seed), rows)
    return _table(cols, 0, with_label=True).to_pandas()


def ensure_dataset(folder: Path, rows: int, rows_per_file: int = ROWS_PER_FILE) -> dict[str, Any]:
    """Generate the input for `rows` rows into `folder` unless a matching copy is cached there."""
    # A leading underscore keeps Spark from reading it as data.
    manifest_path = folder / "_manifest.json"
    wanted = {"rows": rows, "rows_per_file": rows_per_file, "generator": GENERATOR_VERSION}
    if manifest_path.is_file():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        files = [folder / name for name in manifest.get("files", [])]
        if all(manifest.get(k) == v for k, v in wanted.items()) and all(f.is_file() for f in files):
            manifest["cached"] = True
            return manifest
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    manifest_path.unlink(missing_ok=True)
    file_count = max(1, math.ceil(rows / rows_per_file))
    bounds = np.linspace(0, rows, file_count + 1).astype(int)
    names: list[str] = []
    bad_by_kind = dict.fromkeys(BAD_KINDS, 0)
    for index in range(file_count):
        start, stop = int(bounds[index]), int(bounds[index + 1])
        rng = np.random.default_rng([2024, index])
        cols = meter_columns(rng, stop - start)
        bad = _spoil(cols, rng, bad_by_kind)
        name = f"meters-{index:04d}.parquet"
        pq.write_table(
            _table(cols, start, bad),
            folder / name,
            row_group_size=ROW_GROUP_ROWS,
            compression="snappy",
        )
        names.append(name)
    manifest = {
        **wanted,
        "files": names,
        "bytes": sum((folder / n).stat().st_size for n in names),
        "bad_rows": sum(bad_by_kind.values()),
        "bad_by_kind": bad_by_kind,
        "columns": {"key": KEY, "numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["cached"] = False
    return manifest


def _spoil(
    cols: dict[str, np.ndarray], rng: np.random.Generator, counts: dict[str, int]
) -> dict[str, np.ndarray]:
    """Make about BAD_FRACTION of the rows bad, one defect per row; return the null masks."""
    rows = len(cols["kwh_1d"])
    picks = rng.choice(rows, size=round(rows * BAD_FRACTION), replace=False)
    nulls: dict[str, np.ndarray] = {}
    for n, row in enumerate(picks):
        kind = BAD_KINDS[n % len(BAD_KINDS)]
        counts[kind] += 1
        if kind == "null":
            column = NUMERIC[int(rng.integers(len(NUMERIC)))]
            nulls.setdefault(column, np.zeros(rows, dtype=bool))[row] = True
        elif kind == "nan":
            cols[NUMERIC[int(rng.integers(len(NUMERIC)))]][row] = np.nan
        elif kind == "infinite":
            cols[NUMERIC[int(rng.integers(len(NUMERIC)))]][row] = rng.choice([np.inf, -np.inf])
        elif kind == "negative":
            column = _NEGATIVE_COLUMNS[n % len(_NEGATIVE_COLUMNS)]
            cols[column][row] = -abs(cols[column][row]) - 1.0
        else:
            column = CATEGORICAL[n % len(CATEGORICAL)]
            nulls.setdefault(column, np.zeros(rows, dtype=bool))[row] = True
    return nulls


def _table(
    cols: dict[str, np.ndarray],
    first_id: int,
    nulls: dict[str, np.ndarray] | None = None,
    with_label: bool = False,
) -> pa.Table:
    """The key, the features (nulls where `nulls` says) and optionally the label, as Arrow."""
    nulls = nulls or {}
    rows = len(cols["kwh_1d"])
    ids = pc.cast(pa.array(np.arange(first_id, first_id + rows, dtype="int64")), pa.string())
    arrays: dict[str, pa.Array] = {
        KEY: pc.binary_join_element_wise("M", pc.utf8_lpad(ids, 10, "0"), ""),
    }
    for name in NUMERIC:
        arrays[name] = pa.array(cols[name], type=pa.float64(), mask=nulls.get(name))
    for name, values, index in (
        ("region", REGIONS, cols["_region_index"]),
        ("tariff", TARIFFS, cols["_tariff_index"]),
    ):
        taken = pc.take(pa.array(values), pa.array(index))
        if name in nulls:
            taken = pc.if_else(pa.array(nulls[name]), pa.scalar(None, pa.string()), taken)
        arrays[name] = taken
    if with_label:
        arrays[LABEL] = pa.array(cols[LABEL])
    return pa.table(arrays)
