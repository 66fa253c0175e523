"""Shared fixtures: one local SparkSession with Delta for the whole run, one real MLflow registry
in SQLite, and a factory for small lakehouses (Parquet or Delta input plus a deployment file)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

os.environ.setdefault("LAKESCORE_SPARK_MASTER", "local[2]")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

FEATURES = ["kwh_7d", "kwh_30d", "peak_ratio", "temp_c"]


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    root: Path
    counting_log: Path

    @property
    def picky_log(self) -> Path:
        return self.root / "picky.log"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from lakescore.session import get_spark

    session = get_spark()
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """meter_risk v1, v2 (@champion -> 2); counting, broken, short, sk_meter (sklearn flavor)."""
    import mlflow
    import scoring_models
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from lakescore.demo import log_and_register, make_meter_frame, register_model

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    train = make_meter_frame(2_000)
    register_model(train, uri, root / "artifacts")
    register_model(train, uri, root / "artifacts")

    counting_log = root / "counting.log"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "tests", artifact_location=(root / "artifacts-tests").as_uri()
    )
    signature = _test_model_signature(train)
    for name, model in (
        ("counting", scoring_models.CountingModel(str(counting_log))),
        ("broken", scoring_models.BrokenModel()),
        ("short", scoring_models.ShortModel()),
        ("picky", scoring_models.PickyModel(str(root / "picky.log"))),
    ):
        log_and_register(
            uri,
            experiment,
            name,
            lambda model=model: mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=signature,
                code_paths=[scoring_models.__file__],
                pip_requirements=["pandas"],
            ),
        )
    classifier = LogisticRegression().fit(train[FEATURES], train["fault"])
    log_and_register(
        uri,
        experiment,
        "sk_meter",
        lambda: mlflow.sklearn.log_model(
            classifier,
            name="model",
            signature=infer_signature(train[FEATURES], classifier.predict(train[FEATURES])),
            pip_requirements=["scikit-learn"],
        ),
    )
    return Registry(uri, root, counting_log)


def _test_model_signature(train: pd.DataFrame) -> Any:
    from mlflow.models import infer_signature

    example = train[[*FEATURES, "tariff"]].head(20)
    return infer_signature(example, pd.Series(np.zeros(len(example))))


def register_counting_model(registry: Registry, name: str) -> Path:
    """A CountingModel of its own under `name` (its own files, so no Python worker of the
    session has it loaded yet), logging to the file returned."""
    import mlflow
    import scoring_models

    from lakescore.demo import log_and_register, make_meter_frame

    log = registry.root / f"{name}.log"
    client = mlflow.MlflowClient(tracking_uri=registry.tracking_uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    signature = _test_model_signature(make_meter_frame(40))
    log_and_register(
        registry.tracking_uri,
        experiment,
        name,
        lambda: mlflow.pyfunc.log_model(
            name="model",
            python_model=scoring_models.CountingModel(str(log)),
            signature=signature,
            code_paths=[scoring_models.__file__],
            pip_requirements=["pandas"],
        ),
    )
    return log


LakehouseFactory = Callable[..., Path]


@pytest.fixture
def lakehouse(tmp_path: Path, registry: Registry, spark: Any) -> LakehouseFactory:
    """Build input data and a deployment file in tmp_path; returns the deployment file's path.

    Keyword overrides: rows, files, fmt ("parquet" | "delta"), model (URI), bad (spoil rows),
    frame (a ready pandas frame), and any top-level deployment key (rules, limits, ...).
    """
    from lakescore.demo import make_meter_frame, spoil, write_parquet_files

    def build(
        rows: int = 300,
        files: int = 3,
        fmt: str = "parquet",
        model: str = "models:/meter_risk@champion",
        bad: bool = True,
        frame: pd.DataFrame | None = None,
        **overrides: Any,
    ) -> Path:
        data = frame if frame is not None else make_meter_frame(rows, seed=rows)
        if frame is None:
            data = (spoil(data) if bad else data).drop(columns=["fault"])
        input_dir = tmp_path / "raw" / "meters"
        if fmt == "delta":
            staging = tmp_path / "staging"
            write_parquet_files(data, staging, files)
            spark.read.parquet(str(staging)).write.format("delta").save(str(input_dir))
        else:
            write_parquet_files(data, input_dir, files)
        deployment: dict[str, Any] = {
            "name": "meter-risk-test",
            "model": {"uri": model, "tracking_uri": registry.tracking_uri},
            "input": {
                "format": fmt,
                "path": "raw/meters",
                "key": "meter_id",
                "passthrough": ["meter_id", "region"],
            },
            "output": {"path": "scored/predictions"},
            "quarantine": {"path": "scored/quarantine"},
            "runs": {"path": "scored/runs"},
            "rules": [
                {"name": "usage_non_negative", "expr": "kwh_7d >= 0", "action": "quarantine"}
            ],
            "scoring": {"batch_size": 64},
        }
        deployment.update(overrides)
        path = tmp_path / "deployment.yaml"
        path.write_text(yaml.safe_dump(deployment, sort_keys=False))
        return path

    return build
