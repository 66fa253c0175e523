"""`lakescore demo`: a small smart-meter lakehouse, a registered model, a deployment; then a run.

The demo plays the data producer and the model's owner too: it trains, logs and registers the
model itself, the one place outside model.py that talks to an MLflow registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lakescore.config import load_deployment
from lakescore.demo_model import FEATURES, TARIFFS, MeterRiskModel, encode
from lakescore.errors import EXIT_OK, UsageError
from lakescore.progress import Progress
from lakescore.report import print_run

MODEL_NAME = "meter_risk"
ALIAS = "champion"
FILES = 6

DEPLOYMENT_YAML = """\
name: meter-risk
model:
  uri: models:/{model}@{alias}
  tracking_uri: sqlite:///mlflow.db
input:
  format: parquet
  path: raw/meters
  key: meter_id
  passthrough: [meter_id, region]
output:     {{path: scored/meter_risk}}
quarantine: {{path: scored/meter_risk_quarantine}}
runs:       {{path: scored/lakescore_runs}}
rules:
  - {{name: usage_non_negative, expr: "kwh_7d >= 0 AND kwh_30d >= 0", action: quarantine}}
  - {{name: usage_plausible, expr: "kwh_30d < 2500", action: warn}}
limits:
  max_error_fraction: 0.05
scoring:
  batch_size: 10000
"""


def make_meter_frame(rows: int, seed: int = 7) -> pd.DataFrame:
    """Synthetic weekly smart-meter features with a fault label, all values valid."""
    rng = np.random.default_rng(seed)
    kwh_7d = rng.gamma(4.0, 20.0, rows)
    frame = pd.DataFrame(
        {
            "meter_id": [f"M{i:08d}" for i in range(rows)],
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "tariff": rng.choice(TARIFFS, rows),
            "kwh_7d": kwh_7d,
            "kwh_30d": kwh_7d * 4.2 + rng.normal(0, 15, rows).clip(-kwh_7d * 4),
            "peak_ratio": rng.beta(2, 5, rows),
            "temp_c": rng.normal(9, 6, rows),
        }
    )
    logit = 0.03 * (frame.kwh_7d - 80) + 4 * (frame.peak_ratio - 0.3) - 0.05 * frame.temp_c
    frame["fault"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def spoil(frame: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """A realistic handful (~0.5%) of bad rows: nulls, NaN, infinity, negative usage."""
    rng = np.random.default_rng(seed)
    bad = frame.copy()
    bad["kwh_7d"] = bad["kwh_7d"].astype(object)
    picks = rng.choice(len(bad), size=max(5, len(bad) // 200), replace=False)
    for n, index in enumerate(picks):
        match n % 5:
            case 0:
                bad.loc[index, "kwh_7d"] = None  # object column cell: a real null
            case 1:
                bad.loc[index, "peak_ratio"] = float("nan")
            case 2:
                bad.loc[index, "temp_c"] = float("inf")
            case 3:
                bad.loc[index, "kwh_7d"] = -abs(bad.loc[index, "kwh_7d"])
            case _:
                bad.loc[index, "kwh_30d"] = 3000.0 + n  # implausible: warned, still scored
    return bad


def write_parquet_files(frame: pd.DataFrame, folder: Path, files: int = FILES) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    bounds = np.linspace(0, len(frame), files + 1).astype(int)
    for index in range(files):
        part = frame.iloc[bounds[index] : bounds[index + 1]]
        path = folder / f"meters-{index:03d}.parquet"
        pq.write_table(_arrow_table(part), path)
        paths.append(path)
    return paths


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """Keep NaN as NaN (pandas would make it null); `None` marks the real nulls."""
    arrays = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object:
            arrays[name] = pa.array(values.tolist())
        else:
            nulls = values.map(lambda v: v is None or v is pd.NA).to_numpy(dtype=bool)
            arrays[name] = pa.array(
                values.to_numpy(dtype="float64", na_value=np.nan)
                if values.dtype.kind == "f"
                else values.to_numpy(),
                mask=nulls if nulls.any() else None,
            )
    return pa.table(arrays)


def register_model(train: pd.DataFrame, tracking_uri: str, artifacts: Path) -> str:
    """Train, log and register the model, and point the alias at the new version."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier

    classifier = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    classifier.fit(encode(train), train["fault"])
    model = MeterRiskModel(classifier)
    example = train[[*FEATURES, "tariff"]].head(50)
    signature = infer_signature(example, model.predict(None, example))
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("lakescore-demo")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("lakescore-demo", artifact_location=artifacts.as_uri())
    )
    version = log_and_register(
        tracking_uri,
        experiment_id,
        MODEL_NAME,
        lambda: mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature,
            pip_requirements=["scikit-learn", "pandas"],
        ),
    )
    client.set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return version


def log_and_register(
    tracking_uri: str, experiment_id: str, name: str, log: Callable[[], Any]
) -> str:
    """Log a model in a new run and register it as a new version of `name`; returns the version.

    Registers through an explicit client, so MLflow's process-wide registry URI is never changed
    (a notebook or test process may be using another registry).
    """
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with _use_tracking_uri(tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = log()
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        created = client.create_model_version(
            name, source=f"models:/{info.model_id}", run_id=run.info.run_id, model_id=info.model_id
        )
    return str(created.version)


def build_lakehouse(folder: str | Path, rows: int) -> Path:
    """Create the sample input, the registered model and the deployment file; return its path."""
    root = Path(folder).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, a folder this user cannot write
        raise UsageError(
            f"--dir {folder}: cannot make the demo's folder there ({exc.strerror or exc})."
        ) from exc
    clean = make_meter_frame(rows)
    input_folder = root / "raw" / "meters"
    for old in input_folder.glob("*.parquet"):
        old.unlink()
    write_parquet_files(spoil(clean).drop(columns=["fault"]), input_folder)
    register_model(clean, f"sqlite:///{root / 'mlflow.db'}", root / "mlartifacts")
    deployment = root / "deployment.yaml"
    deployment.write_text(DEPLOYMENT_YAML.format(model=MODEL_NAME, alias=ALIAS))
    return deployment


def run_demo(folder: str, rows: int, verbose: bool = False) -> int:
    from lakescore.runner import score
    from lakescore.session import get_spark

    progress = Progress()
    progress.stage(f"building a sample lakehouse of {rows:,} meter rows in {folder}")
    deployment = load_deployment(build_lakehouse(folder, rows))
    progress.stage(f"model {MODEL_NAME} registered; alias @{ALIAS} set")
    spark = get_spark(verbose=verbose, show_progress=progress.interactive)
    result = score(spark, deployment, progress=progress)
    from dataclasses import asdict

    print_run(asdict(result.record), deployment)
    print(f"\nDeployment file: {deployment.source_file}")
    print(f"Try: lakescore runs list {deployment.source_file}")
    return EXIT_OK
