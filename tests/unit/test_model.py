"""Unit tests for model-URI resolution against a real MLflow registry in SQLite (no mocks)."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from mlflow.types import ColSpec, Schema
from sklearn.linear_model import LogisticRegression

from lakescore.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    DeploymentError,
    LakescoreError,
    ModelNotFoundError,
    ModelNotReadyError,
    RegistryUnreachableError,
)
from lakescore.model import (
    InputColumn,
    OutputColumn,
    ResolvedModel,
    pin_model_version,
    resolve_model,
)

MODEL_NAME = "risk"
FEATURES = pd.DataFrame({"kwh_7d": [0.0, 1.0, 2.0, 3.0, 4.0], "temp": [1.0, 0.0, 1.0, 0.0, 1.0]})
LABELS = np.array([0, 0, 1, 1, 1])
EXPECTED_INPUTS = (InputColumn("kwh_7d", "double"), InputColumn("temp", "double"))
# Explicit requirements skip MLflow's slow requirement inference.
SKLEARN_REQUIREMENTS = ["scikit-learn"]
EXPECTED_OUTPUTS = (OutputColumn("prediction", "bigint"),)


@dataclass(frozen=True)
class Registry:
    """A local MLflow registry holding two versions of `risk`, alias champion -> 1."""

    uri: str
    client: mlflow.MlflowClient
    run_ids: tuple[str, ...]
    root: Path
    model_ids: tuple[str, ...] = ()  # MLflow 3's logged models, one per run


class TwoScores(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A pyfunc returning a two-column DataFrame."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"score": model_input["kwh_7d"] * 0.5, "label": [1] * len(model_input)})


def _fit(c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit(FEATURES, LABELS)


@pytest.fixture(scope="module")
def risk_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Create the SQLite registry once for the module; global MLflow state is restored after."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        "lakescore-unit", artifact_location=(root / "artifacts").as_uri()
    )
    run_ids, model_ids = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        # log_model needs an active run, which only the global tracking URI provides.
        with _use_tracking_uri(uri):
            for c in (1.0, 0.1):
                model = _fit(c)
                with mlflow.start_run(experiment_id=experiment_id) as run:
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        signature=infer_signature(FEATURES, model.predict(FEATURES)),
                        registered_model_name=MODEL_NAME,
                        pip_requirements=SKLEARN_REQUIREMENTS,
                    )
                run_ids.append(run.info.run_id)
                model_ids.append(info.model_id)
    client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    yield Registry(uri, client, tuple(run_ids), root, tuple(model_ids))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep env vars that model.py or MLflow set from leaking out of each test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sklearn model saved to a plain folder, with a signature."""
    path = tmp_path_factory.mktemp("local") / "model"
    model = _fit(1.0)
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(FEATURES, model.predict(FEATURES)),
        pip_requirements=SKLEARN_REQUIREMENTS,
    )
    return path


# --- pinning registered models ----------------------------------------------------------------


def test_alias_pins_to_the_version_it_points_to(risk_registry: Registry) -> None:
    """models:/risk@champion pins to version 1 while the alias points there."""
    pinned = pin_model_version("models:/risk@champion", risk_registry.uri)
    assert pinned.requested_uri == "models:/risk@champion"
    assert pinned.pinned_uri == "models:/risk/1"
    assert pinned.name == MODEL_NAME
    assert pinned.version == "1"


def test_moving_the_alias_changes_the_pinned_version(risk_registry: Registry) -> None:
    """After champion moves to version 2, the same URI pins to 2."""
    risk_registry.client.set_registered_model_alias(MODEL_NAME, "champion", "2")
    try:
        pinned = pin_model_version("models:/risk@champion", risk_registry.uri)
    finally:
        risk_registry.client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    assert pinned.pinned_uri == "models:/risk/2"
    assert pinned.version == "2"


@pytest.mark.parametrize(
    ("uri", "version"),
    [("models:/risk/2", "2"), ("models:/risk/1", "1"), ("models:/risk/latest", "2")],
)
def test_numbered_and_latest_uris_pin(risk_registry: Registry, uri: str, version: str) -> None:
    """A version number pins to itself; `latest` pins to the highest version."""
    pinned = pin_model_version(uri, risk_registry.uri)
    assert pinned.pinned_uri == f"models:/risk/{version}"
    assert pinned.version == version
    assert pinned.name == MODEL_NAME


def test_run_uri_pins_to_the_run_id(risk_registry: Registry) -> None:
    """runs:/<id>/model has no registered name; its version is the run id."""
    run_id = risk_registry.run_ids[0]
    uri = f"runs:/{run_id}/model"
    pinned = pin_model_version(uri, risk_registry.uri)
    assert pinned.name is None
    assert pinned.version == run_id
    assert pinned.pinned_uri == uri


def test_a_run_uri_is_pinned_to_the_logged_model_it_downloaded(
    risk_registry: Registry, tmp_path: Path
) -> None:
    """A cell run again logs a second model under the same path in the same run: the runs of
    each must not both say `runs:/RUN/model`. The version stays the run id."""
    experiment = risk_registry.client.get_experiment_by_name("lakescore-unit")
    with (
        _use_tracking_uri(risk_registry.uri),
        mlflow.start_run(experiment_id=experiment.experiment_id) as run,
    ):
        for c in (1.0, 9.0):
            last = mlflow.sklearn.log_model(
                _fit(c), name="model", pip_requirements=SKLEARN_REQUIREMENTS
            )
    uri = f"runs:/{run.info.run_id}/model"
    resolved = resolve_model(uri, risk_registry.uri, str(tmp_path))
    assert resolved.pinned_uri == f"models:/{last.model_id}"
    assert resolved.version.version == run.info.run_id
    assert resolved.version.requested_uri == uri


# --- resolving (download and signature) -------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "version"),
    [("models:/risk@champion", "1"), ("models:/risk/2", "2"), ("models:/risk/latest", "2")],
)
def test_resolve_registered_model_reads_its_signature(
    risk_registry: Registry, tmp_path: Path, uri: str, version: str
) -> None:
    """A registered model is downloaded under download_dir and its signature read."""
    resolved = resolve_model(uri, risk_registry.uri, download_dir=str(tmp_path))

    assert isinstance(resolved, ResolvedModel)
    assert resolved.name == MODEL_NAME
    assert resolved.version_label == version
    assert resolved.pinned_uri == f"models:/risk/{version}"
    assert Path(resolved.local_path).is_relative_to(tmp_path)
    assert (Path(resolved.local_path) / "MLmodel").is_file()
    assert resolved.inputs == EXPECTED_INPUTS
    assert resolved.outputs == EXPECTED_OUTPUTS


def test_resolve_run_uri(risk_registry: Registry, tmp_path: Path) -> None:
    """A runs:/ model is downloaded and described by its run id."""
    run_id = risk_registry.run_ids[1]
    resolved = resolve_model(f"runs:/{run_id}/model", risk_registry.uri, download_dir=str(tmp_path))
    assert resolved.name is None
    assert resolved.version_label == run_id
    assert (Path(resolved.local_path) / "MLmodel").is_file()
    assert resolved.inputs == EXPECTED_INPUTS
    assert resolved.outputs == EXPECTED_OUTPUTS


def test_resolve_a_logged_models_uri(risk_registry: Registry, tmp_path: Path) -> None:
    """MLflow 3's log_model returns models:/m-<id>: the model is fixed by its id (its version
    label), has no registered name, and is downloaded like any other."""
    model_id = risk_registry.model_ids[1]
    uri = f"models:/{model_id}"
    resolved = resolve_model(uri, risk_registry.uri, download_dir=str(tmp_path))
    assert (resolved.name, resolved.version_label, resolved.pinned_uri) == (None, model_id, uri)
    assert (Path(resolved.local_path) / "MLmodel").is_file()
    assert resolved.inputs == EXPECTED_INPUTS
    with pytest.raises(ModelNotFoundError, match="m-0123abcd"):
        pin_model_version("models:/m-0123abcd", risk_registry.uri)


def test_resolve_run_uri_leaves_global_tracking_uri_alone(
    risk_registry: Registry, tmp_path: Path
) -> None:
    """Resolving with an explicit tracking URI does not change MLflow's global one."""
    before = mlflow.get_tracking_uri()
    resolve_model(
        f"runs:/{risk_registry.run_ids[0]}/model", risk_registry.uri, download_dir=str(tmp_path)
    )
    assert mlflow.get_tracking_uri() == before


@pytest.mark.parametrize("model", ["registered", "run"])
def test_resolving_leaves_the_processes_tracking_uri_variable_as_it_was(
    risk_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """A notebook configured through MLFLOW_TRACKING_URI alone (MLflow's global setting
    unset) kept it after a deployment with its own model.tracking_uri ran: MLflow's scoped
    setting put the global back, and with it unset the variable, so the notebook's later
    MLflow calls went to ./mlflow.db."""
    mlflow.set_tracking_uri(None)
    notebooks = f"sqlite:///{tmp_path / 'notebook.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", notebooks)
    uri = (
        f"models:/{MODEL_NAME}@champion"
        if model == "registered"
        else f"runs:/{risk_registry.run_ids[0]}/model"
    )
    resolve_model(uri, risk_registry.uri, download_dir=str(tmp_path / "model"))
    assert os.environ.get("MLFLOW_TRACKING_URI") == notebooks
    assert mlflow.get_tracking_uri() == notebooks


def test_local_model_directory(local_model: Path) -> None:
    """A local folder is used in place, versioned by a content hash."""
    resolved = resolve_model(str(local_model))
    assert resolved.name is None
    assert resolved.version_label.startswith("sha256:")
    assert len(resolved.version_label) > len("sha256:")
    assert resolved.local_path == str(local_model)
    assert resolved.inputs == EXPECTED_INPUTS
    assert resolved.outputs == EXPECTED_OUTPUTS


def test_local_model_version_is_stable_for_the_same_content(
    local_model: Path, tmp_path: Path
) -> None:
    """The same files give the same version, wherever they are; other files another one."""
    first = pin_model_version(str(local_model)).version
    copy = tmp_path / "copy"
    shutil.copytree(local_model, copy)
    assert pin_model_version(str(local_model)).version == first
    assert pin_model_version(str(copy)).version == first

    (copy / "extra.txt").write_text("changed")
    assert pin_model_version(str(copy)).version != first


def test_local_model_file_uri(local_model: Path) -> None:
    """A file:// URI of a model folder resolves like the plain path."""
    assert (
        pin_model_version(local_model.as_uri()).version
        == pin_model_version(str(local_model)).version
    )


def test_local_folder_without_mlmodel_is_not_found(tmp_path: Path) -> None:
    """A folder that is not an MLflow model raises ModelNotFoundError naming it."""
    with pytest.raises(ModelNotFoundError) as info:
        pin_model_version(str(tmp_path))
    assert info.value.exit_code == EXIT_USAGE
    assert str(tmp_path) in str(info.value)


def test_model_without_signature(tmp_path: Path) -> None:
    """No signature: inputs unknown (None) and one double `prediction` output, which may be
    null (nothing says it is required)."""
    path = tmp_path / "unsigned"
    mlflow.sklearn.save_model(_fit(1.0), str(path), pip_requirements=SKLEARN_REQUIREMENTS)
    resolved = resolve_model(str(path))
    assert resolved.inputs is None
    assert resolved.outputs == (OutputColumn("prediction", "double", required=False, signed=False),)


def test_an_unnamed_input_column_is_refused_with_the_remedy(tmp_path: Path) -> None:
    """A signature inferred from a list of strings (transformers pipelines log such) has one
    unnamed input: lakescore matches columns by name, and says how to log the model."""
    path = tmp_path / "unnamed"
    signature = ModelSignature(
        inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("long")])
    )
    mlflow.sklearn.save_model(
        _fit(1.0), str(path), signature=signature, pip_requirements=SKLEARN_REQUIREMENTS
    )
    with pytest.raises(DeploymentError, match="unnamed input column") as info:
        resolve_model(str(path))
    assert "pandas DataFrame input example" in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_result_type_types_only_a_model_without_outputs(tmp_path: Path, local_model: Path) -> None:
    """scoring.result_type (here string) types the prediction of a model without an output
    signature; a model with one keeps the signature's type."""
    unsigned = tmp_path / "unsigned"
    mlflow.sklearn.save_model(_fit(1.0), str(unsigned), pip_requirements=SKLEARN_REQUIREMENTS)
    resolved = resolve_model(str(unsigned), result_type="string")
    assert resolved.outputs == (OutputColumn("prediction", "string", required=False, signed=False),)
    signed = resolve_model(str(local_model), result_type="string")
    assert signed.outputs == (OutputColumn("prediction", "bigint"),)


def test_pyfunc_with_two_output_columns(tmp_path: Path) -> None:
    """A DataFrame output signature of two columns gives two named, typed outputs in order."""
    path = tmp_path / "two"
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "kwh_7d"), ColSpec("double", "temp")]),
        outputs=Schema([ColSpec("double", "score"), ColSpec("long", "label", required=False)]),
    )
    mlflow.pyfunc.save_model(
        str(path), python_model=TwoScores(), signature=signature, pip_requirements=["pandas"]
    )
    resolved = resolve_model(str(path))
    assert resolved.inputs == EXPECTED_INPUTS
    assert resolved.outputs == (
        OutputColumn("score", "double"),
        OutputColumn("label", "bigint", required=False),  # may be null on a scored row
    )


@pytest.mark.parametrize(
    ("predictions", "spark_type"),
    [
        (np.array(["lo", "hi", "lo", "hi", "hi"]), "string"),
        (np.array([0, 1, 0, 1, 1], dtype="int32"), "int"),
        (np.array([0, 1, 0, 1, 1], dtype="uint32"), "bigint"),
        (np.array([True, False, True, True, False]), "boolean"),
        (np.array([0.5, 1.5, 2.5, 3.5, 4.5], dtype="float32"), "float"),
        (np.array([f"2026-01-0{d}" for d in range(1, 6)], dtype="datetime64[ns]"), "timestamp"),
    ],
    ids=["str-labels", "int32", "uint32", "bool", "float32", "datetime64"],
)
def test_tensor_output_signature_types(
    tmp_path: Path, predictions: np.ndarray, spark_type: str
) -> None:
    """`infer_signature(X, model.predict(X))` records a tensor output (string labels as `<U2`):
    each numpy kind gets the Spark type that holds it, not a double that fails the run."""
    path = tmp_path / "tensor"
    signature = infer_signature(FEATURES, predictions)
    assert signature.outputs.is_tensor_spec()
    mlflow.sklearn.save_model(
        _fit(1.0), str(path), signature=signature, pip_requirements=SKLEARN_REQUIREMENTS
    )
    assert resolve_model(str(path)).outputs == (OutputColumn("prediction", spark_type),)


def test_an_unsigned_64_bit_tensor_output_is_refused(tmp_path: Path) -> None:
    """No Spark type holds every uint64: the model is refused before any work, naming the type,
    instead of having its values rounded into a double."""
    path = tmp_path / "uint64"
    signature = infer_signature(FEATURES, np.array([0, 1, 0, 1, 2**63], dtype="uint64"))
    mlflow.sklearn.save_model(
        _fit(1.0), str(path), signature=signature, pip_requirements=SKLEARN_REQUIREMENTS
    )
    with pytest.raises(DeploymentError, match="uint64"):
        resolve_model(str(path))


def test_a_model_returning_several_named_tensors_is_refused(tmp_path: Path) -> None:
    """A multi-head network returns a dict of arrays: it was shown as one `prediction` column
    and failed the run inside the scoring pass; refused before any work, naming the tensors."""
    from mlflow.types import TensorSpec

    path = tmp_path / "heads"
    outputs = Schema(
        [
            TensorSpec(np.dtype("float64"), (-1,), "risk"),
            TensorSpec(np.dtype("int64"), (-1,), "band"),
        ]
    )
    signature = ModelSignature(infer_signature(FEATURES).inputs, outputs)
    mlflow.sklearn.save_model(
        _fit(1.0), str(path), signature=signature, pip_requirements=SKLEARN_REQUIREMENTS
    )
    with pytest.raises(DeploymentError, match=r"returns 2 named tensors \(risk, band\)"):
        resolve_model(str(path))


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "models:/nope@champion",
        "models:/nope/1",
        "models:/risk@nope",
        "models:/risk/7",
    ],
)
def test_unknown_model_or_alias_is_not_found(risk_registry: Registry, uri: str) -> None:
    """An unknown name, alias or version raises ModelNotFoundError naming the URI."""
    with pytest.raises(ModelNotFoundError) as info:
        pin_model_version(uri, risk_registry.uri)
    assert info.value.exit_code == EXIT_USAGE
    assert uri in str(info.value)
    assert risk_registry.uri in str(info.value)


def test_unknown_model_latest_names_the_uri(risk_registry: Registry) -> None:
    """models:/nope/latest is not found, and the message names the URI like the other forms."""
    with pytest.raises(ModelNotFoundError) as info:
        pin_model_version("models:/nope/latest", risk_registry.uri)
    assert "models:/nope/latest" in str(info.value)


def test_unknown_model_latest_is_not_found(risk_registry: Registry) -> None:
    """models:/nope/latest raises ModelNotFoundError naming the model."""
    with pytest.raises(ModelNotFoundError, match="'nope'") as info:
        pin_model_version("models:/nope/latest", risk_registry.uri)
    assert info.value.exit_code == EXIT_USAGE


def test_unknown_run_is_not_found(risk_registry: Registry) -> None:
    """A runs:/ URI of a run that does not exist raises ModelNotFoundError."""
    uri = "runs:/0123456789abcdef0123456789abcdef/model"
    with pytest.raises(ModelNotFoundError) as info:
        pin_model_version(uri, risk_registry.uri)
    assert uri in str(info.value)


@pytest.mark.parametrize("uri", ["models:/risk@champion", "runs:/abc/model"])
def test_a_missing_sqlite_registry_is_named_not_created(tmp_path: Path, uri: str) -> None:
    """MLflow would create the mistyped database and then say the model was not found."""
    database = tmp_path / "typo" / "mlflow.db"
    (tmp_path / "typo").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"registry database .* does not exist") as info:
        pin_model_version(uri, f"sqlite:///{database}")
    assert str(database) in str(info.value)
    assert not database.exists()


@pytest.mark.parametrize(
    "uri", ["models:/risk@champion", "models:/risk/2", "models:/risk/latest", "runs:/abc/model"]
)
def test_unreachable_registry(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    """A registry nobody listens on raises RegistryUnreachableError (exit 1) naming it."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    server = "http://127.0.0.1:9"
    with pytest.raises(RegistryUnreachableError) as info:
        pin_model_version(uri, server)
    assert info.value.exit_code == EXIT_FAILED
    assert server in str(info.value)
    assert uri in str(info.value)


@pytest.mark.parametrize(
    "uri", ["models:/", "models:/risk", "models:/risk/2/extra", "models:/risk/Production"]
)
def test_malformed_models_uri_is_a_deployment_error(risk_registry: Registry, uri: str) -> None:
    """A models:/ URI that is not NAME@ALIAS, NAME/VERSION or NAME/latest is bad usage."""
    with pytest.raises(DeploymentError) as info:
        pin_model_version(uri, risk_registry.uri)
    assert type(info.value) is DeploymentError
    assert info.value.exit_code == EXIT_USAGE
    assert uri in str(info.value)


@pytest.mark.parametrize("uri", ["s3://bucket/models/risk", "dbfs:/models/risk"])
def test_a_uri_of_an_object_store_is_named_as_unsupported(uri: str) -> None:
    """Not read as a local folder named `s3:/bucket/...` that has no MLmodel file."""
    with pytest.raises(DeploymentError, match="lakescore takes models:/") as info:
        pin_model_version(uri)
    assert uri in str(info.value)


def _register_copy(registry: Registry, name: str) -> str:
    """Register version 1 of `risk`'s files again under `name`; returns the new version."""
    registry.client.create_registered_model(name)
    source = registry.client.get_model_version_download_uri(MODEL_NAME, "1")
    created = registry.client.create_model_version(name, source, run_id=registry.run_ids[0])
    return str(created.version)


def test_latest_of_a_name_with_a_quote_pins(risk_registry: Registry) -> None:
    """The `latest` search quotes the name as MLflow's filters need (a `'` broke it)."""
    version = _register_copy(risk_registry, "o'hare")
    pinned = pin_model_version("models:/o'hare/latest", risk_registry.uri)
    assert pinned.pinned_uri == f"models:/o'hare/{version}"


def _set_status(registry: Registry, name: str, version: str, status: str) -> None:
    """As a remote registry has it while it copies a version's files (SQLite's store makes every
    version READY at once)."""
    with sqlite3.connect(registry.root / "mlflow.db") as db:
        db.execute(
            "UPDATE model_versions SET status = ? WHERE name = ? AND version = ?",
            (status, name, int(version)),
        )


@pytest.mark.parametrize("status", ["PENDING_REGISTRATION", "FAILED_REGISTRATION"])
def test_a_version_not_ready_is_refused_by_version_and_alias(
    risk_registry: Registry, status: str
) -> None:
    """A registration still copying files (or that failed) may lack them: it is not scored."""
    name = f"pending_{status.lower()}"
    version = _register_copy(risk_registry, name)
    risk_registry.client.set_registered_model_alias(name, "champion", version)
    _set_status(risk_registry, name, version, status)
    for uri in (f"models:/{name}/{version}", f"models:/{name}@champion", f"models:/{name}/latest"):
        with pytest.raises(ModelNotReadyError, match=f"registration is {status}") as info:
            pin_model_version(uri, risk_registry.uri)
        assert uri in str(info.value) and info.value.exit_code == EXIT_FAILED


def test_latest_is_the_newest_version_whose_registration_finished(
    risk_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    name = "newest_pending"
    first = _register_copy(risk_registry, name)
    source = risk_registry.client.get_model_version_download_uri(MODEL_NAME, "1")
    second = risk_registry.client.create_model_version(name, source).version
    _set_status(risk_registry, name, str(second), "PENDING_REGISTRATION")
    with caplog.at_level(logging.WARNING, logger="lakescore.model"):
        assert pin_model_version(f"models:/{name}/latest", risk_registry.uri).version == first
    # The version passed over is named, so a registration stuck or failed is noticed.
    assert f"newer version is not READY ({second} PENDING_REGISTRATION)" in caplog.text


def test_every_page_of_versions_is_read(risk_registry: Registry) -> None:
    """A registry answers in pages; `latest` must see the last one too."""
    from lakescore.model import _all_versions

    versions = _all_versions(risk_registry.client, MODEL_NAME, page_size=1)
    assert sorted(int(v.version) for v in versions) == [1, 2]


def test_a_registered_version_whose_files_are_gone_names_where_they_were(
    tmp_path: Path,
) -> None:
    """A version registered from files at `file:///` paths of another machine (or removed):
    it was "not found" (exit 2, a bad deployment) with MLflow's reason cut to its first line,
    which named no file. The registry has it: the download failed, and says where from."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifacts = tmp_path / "artifacts"
    experiment = client.create_experiment("gone", artifact_location=artifacts.as_uri())
    with _use_tracking_uri(uri), mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(_fit(1.0), name="model", registered_model_name="gone")
    shutil.rmtree(artifacts)

    with pytest.raises(LakescoreError) as info:
        resolve_model("models:/gone/1", uri, download_dir=str(tmp_path / "copy"))

    assert not isinstance(info.value, ModelNotFoundError)
    assert info.value.exit_code == EXIT_FAILED
    said = str(info.value)
    assert said.startswith("Model models:/gone/1 (version 1) could not be downloaded from ")
    assert str(artifacts) in said


def test_a_runs_uri_naming_no_model_is_not_found(risk_registry: Registry, tmp_path: Path) -> None:
    """`runs:/RUN/notes` (a folder of other files) or `runs:/RUN/nothing`: a bad deployment
    (exit 2) naming the URI, not an unexpected error naming a temporary MLmodel path."""
    run_id = risk_registry.run_ids[0]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("not a model")
    risk_registry.client.log_artifacts(run_id, str(notes), "notes")
    for path in ("notes", "nothing"):
        with pytest.raises(ModelNotFoundError, match=f"Model runs:/{run_id}/{path} "):
            resolve_model(f"runs:/{run_id}/{path}", risk_registry.uri, str(tmp_path / path))


def test_a_model_not_found_names_the_registry_that_was_asked(
    risk_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without model.tracking_uri MLflow asks MLFLOW_REGISTRY_URI when it is set; the error
    named MLFLOW_TRACKING_URI's store, which was not asked."""
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", risk_registry.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'tracking.db'}")
    with pytest.raises(ModelNotFoundError) as info:
        pin_model_version("models:/no_such_model/1")
    assert f"was not found in {risk_registry.uri}" in str(info.value)


def test_resolving_leaves_mlflows_http_settings_as_they_were(
    risk_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lakescore's calls give up on an unreachable server quickly; a notebook's own MLflow
    calls afterwards keep MLflow's defaults (the settings stayed for the whole process), and
    a setting the user made is never changed."""
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    resolve_model(f"models:/{MODEL_NAME}@champion", risk_registry.uri, str(tmp_path))
    pin_model_version(f"models:/{MODEL_NAME}/1", risk_registry.uri)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"


def test_overlapping_resolutions_keep_the_fail_fast_settings_until_the_last_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runs in notebook threads: the second took the first's settings for the user's, and
    the first, ending, removed them while the second still talked to the server."""
    from lakescore.model import _failing_fast

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    first, second = _failing_fast(), _failing_fast()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == "2"
    second.__exit__(None, None, None)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_an_unavailable_registry_is_asked_three_times_not_mlflows_eight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A registry answering 503: with MLflow's defaults (7 retries, backoff doubling from 2 s) a
    run would wait minutes before failing; lakescore's calls retry twice. Counted at a real
    HTTP server, with none of the settings made by the user."""
    import http.server
    import threading

    asked: list[str] = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    for key in _FAIL_FAST_KEYS:
        monkeypatch.delenv(key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RegistryUnreachableError):
            pin_model_version("models:/meter_risk/1", f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert len(asked) == 3 and "/model-versions/get" in asked[0]
    assert not set(_FAIL_FAST_KEYS) & set(os.environ)


_FAIL_FAST_KEYS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)
