"""The one model every scorer uses: a HistGradientBoosting classifier (100 iterations) in a
scikit-learn pipeline, logged with MLflow's sklearn flavor and registered in a SQLite registry
inside the work folder. Trained once per work folder and then reused.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from bench import datagen

MODEL_NAME = "bench_meter_fault"
ALIAS = "bench"
EXPERIMENT = "lakescore-bench"
MAX_ITER = 100
TRAIN_ROWS = 200_000
# MLflow saves scikit-learn models with skops, which loads only types it is told to trust. These
# are the ones a HistGradientBoosting pipeline needs; we made the file ourselves.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]
# Bump when the model's recipe changes, so a cached registration is not reused.
RECIPE_VERSION = 1


def tracking_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def ensure_model(workdir: Path) -> dict[str, Any]:
    """Train, log and register the model unless this work folder already has it."""
    info_path = workdir / "model.json"
    uri = tracking_uri(workdir)
    if info_path.is_file():
        info: dict[str, Any] = json.loads(info_path.read_text())
        if info.get("recipe") == RECIPE_VERSION and info.get("tracking_uri") == uri:
            info["cached"] = True
            return info
    info = _train_and_register(workdir, uri)
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    info["cached"] = False
    return info


def build_pipeline() -> Any:
    """Ordinal-encode the two categoricals, pass the numeric features through, boost 100 trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                list(datagen.CATEGORICAL),
            ),
            ("numeric", "passthrough", list(datagen.NUMERIC)),
        ],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=MAX_ITER,
        early_stopping=False,
        categorical_features=[0, 1],
        random_state=0,
    )
    return Pipeline([("encode", encode), ("classify", classifier)])


def _train_and_register(workdir: Path, uri: str) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow
    from mlflow.models import infer_signature

    train = datagen.training_frame(TRAIN_ROWS)
    features = train[list(datagen.FEATURES)]
    pipeline = build_pipeline()
    started = time.perf_counter()
    pipeline.fit(features, train[datagen.LABEL])
    fit_seconds = time.perf_counter() - started
    signature = infer_signature(features.head(200), pipeline.predict(features.head(200)))

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(
            EXPERIMENT, artifact_location=(workdir / "mlartifacts").resolve().as_uri()
        )
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_params({"max_iter": MAX_ITER, "train_rows": TRAIN_ROWS})
            logged = mlflow.sklearn.log_model(
                sk_model=pipeline,
                name="model",
                signature=signature,
                registered_model_name=MODEL_NAME,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
    version = str(logged.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return {
        "name": MODEL_NAME,
        "version": version,
        "uri": f"models:/{MODEL_NAME}/{version}",
        "alias_uri": f"models:/{MODEL_NAME}@{ALIAS}",
        "tracking_uri": uri,
        "recipe": RECIPE_VERSION,
        "estimator": f"HistGradientBoostingClassifier(max_iter={MAX_ITER})",
        "train_rows": TRAIN_ROWS,
        "fit_seconds": round(fit_seconds, 2),
    }
