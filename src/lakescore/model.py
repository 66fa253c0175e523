"""Driver side of the model: resolve a URI to a pinned version, its signature and a local copy.

Only this module talks to the MLflow tracking server or registry when scoring (the demo, which
plays the model's producer, registers its own). Executors get the downloaded copy through Spark
(see model_shipping.py), so a cluster whose workers cannot reach the server works.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lakescore.columns import DEFAULT_PREDICTION
from lakescore.errors import (
    DeploymentError,
    LakescoreError,
    ModelNotFoundError,
    ModelNotReadyError,
    RegistryUnreachableError,
)
from lakescore.mlmodel import read_mlmodel
from lakescore.shared_state import changed_while_held

_log = logging.getLogger(__name__)

# MLflow's type names -> Spark SQL DDL types.
MLFLOW_TO_SPARK = {
    "boolean": "boolean",
    "integer": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "string": "string",
    "binary": "binary",
    "datetime": "timestamp",
}
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)\Z")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[^/]+)\Z")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)\Z")
_LOGGED_URI = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)\Z")  # MLflow 3's logged models


@functools.cache
def spark_data_type(ddl: str) -> Any:
    """The Spark type (a pyspark DataType) that a signature's type name means.

    `timestamp` is always TimestampType, an instant: parsed as text it follows the session's
    spark.sql.timestampType, which a notebook may set to TIMESTAMP_NTZ, and the run's columns
    would then no longer match the tables an earlier run made. Cached: a nested type (a model
    without a signature takes columns as read) is parsed by the JVM, a round trip each time.
    """
    from pyspark.sql import types as T

    atomic = {
        "boolean": T.BooleanType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "float": T.FloatType(),
        "double": T.DoubleType(),
        "string": T.StringType(),
        "binary": T.BinaryType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
        "timestamp_ntz": T.TimestampNTZType(),
    }
    return atomic.get(ddl) or T._parse_datatype_string(_TIMESTAMP.sub("timestamp_ltz", ddl))


_TIMESTAMP = re.compile(r"\btimestamp\b(?!:)")  # the type, not a struct field named so


@dataclass(frozen=True)
class InputColumn:
    """One named input of the model's signature, with its Spark type."""

    name: str
    spark_type: str
    required: bool = True


@dataclass(frozen=True)
class OutputColumn:
    """One prediction column, named and typed from the model's output signature. A required one
    (MLflow's default) that the model leaves null or NaN on a row sends the row to quarantine;
    an optional one (`infer_signature` marks outputs its example left empty) is stored null.
    `signed` is false for the one column of a model without an output signature, typed from
    `scoring.result_type`: a result that does not fit it is explained in those terms."""

    name: str
    spark_type: str
    required: bool = True
    signed: bool = True


@dataclass(frozen=True)
class ModelVersion:
    """Which model a URI means right now, pinned so the whole run uses exactly that one."""

    requested_uri: str
    pinned_uri: str
    name: str | None
    version: str
    download_uri: str


@dataclass(frozen=True)
class ResolvedModel:
    """A pinned model, its local copy and its signature."""

    version: ModelVersion
    local_path: str
    inputs: tuple[InputColumn, ...] | None
    outputs: tuple[OutputColumn, ...]

    @property
    def name(self) -> str | None:
        return self.version.name

    @property
    def version_label(self) -> str:
        return self.version.version

    @property
    def pinned_uri(self) -> str:
        return self.version.pinned_uri

    def describe(self) -> str:
        """`models:/m/3 (from models:/m@champion)`, or the URI alone when it was pinned as given."""
        pinned, requested = self.version.pinned_uri, self.version.requested_uri
        return pinned if pinned == requested else f"{pinned} (from {requested})"


def check_model_uri(uri: str) -> None:
    """Refuse, from the text alone, a URI that no registry or folder could answer
    (`models:/x@`, `models:/x/abc`, `runs:/`, `s3://…`): a deployment file holding one fails
    when it is read, before a run is recorded."""
    if _LOGGED_URI.match(uri) or _ALIAS_URI.match(uri) or _RUN_URI.match(uri):
        return
    numbered = _VERSION_URI.match(uri)
    if numbered:
        version = numbered["version"]
        if version.isdigit() or version.lower() == "latest":
            return
        if version.lower() in _STAGES:
            raise DeploymentError(
                f"Model URI {uri!r}: stages are not supported; use an alias (models:/NAME@ALIAS)."
            )
        raise DeploymentError(
            f"Model URI {uri!r}: version {version!r} is not a version number (1, 2, …) nor latest."
        )
    scheme = urlparse(uri).scheme
    if scheme.lower() in ("models", "runs"):
        raise DeploymentError(
            f"Model URI {uri!r} is not models:/NAME@ALIAS, models:/NAME/VERSION, "
            "models:/NAME/latest, a logged model's models:/m-ID nor runs:/RUN_ID/PATH."
        )
    if len(scheme) > 1 and scheme != "file":  # one letter is a Windows drive
        raise DeploymentError(
            f"Model URI {uri!r}: lakescore takes models:/NAME@ALIAS, models:/NAME/VERSION, "
            f"models:/m-ID, runs:/RUN_ID/PATH or a local folder, not {scheme}: URIs (register "
            "the model, or download it to a local folder)."
        )


_STAGES = ("none", "staging", "production", "archived")  # MLflow's deprecated model stages


def pin_model_version(uri: str, tracking_uri: str | None = None) -> ModelVersion:
    """Resolve an alias (or `latest`) to a version once, on the driver."""
    with _failing_fast():
        return _pin(uri, tracking_uri)


def _pin(uri: str, tracking_uri: str | None) -> ModelVersion:
    check_model_uri(uri)
    logged = _LOGGED_URI.match(uri)
    if logged:
        # What log_model returns in MLflow 3 (ModelInfo.model_uri): fixed, like a run's model.
        with _registry_errors(uri, tracking_uri):
            _client(tracking_uri).get_logged_model(logged["model_id"])
        return ModelVersion(uri, uri, None, logged["model_id"], uri)
    if uri.startswith("models:/"):
        return _pin_registered(uri, tracking_uri)
    run = _RUN_URI.match(uri)
    if run:
        with _registry_errors(uri, tracking_uri):
            client = _client(tracking_uri)
            client.get_run(run["run_id"])
        return ModelVersion(uri, uri, None, run["run_id"], uri)
    path = Path(unquote(urlparse(uri).path) if uri.startswith("file:") else uri)
    if not (path / "MLmodel").is_file():
        raise ModelNotFoundError(f"Model path {path} is not an MLflow model (no MLmodel file).")
    return ModelVersion(uri, str(path), None, "sha256:" + content_hash(path), str(path))


def resolve_model(
    uri: str,
    tracking_uri: str | None = None,
    download_dir: str | None = None,
    result_type: str = "double",
) -> ResolvedModel:
    """Pin the version, download the model once on the driver and read its signature.

    `result_type` types the prediction of a model whose signature has no outputs.
    """
    with _failing_fast():
        pinned = _pin(uri, tracking_uri)
        local_path = _download(pinned, tracking_uri, download_dir)
    return read_signature(_pinned_to_logged_model(pinned, local_path), local_path, result_type)


def _pinned_to_logged_model(pinned: ModelVersion, local_path: str) -> ModelVersion:
    """A `runs:/RUN/model` URI names the newest model logged under that path in the run: a
    notebook cell run again logs another, and both runs' rows would say `runs:/RUN/model`.
    The copy downloaded, which the whole run uses, names its MLflow 3 logged model: the run's
    model URI becomes `models:/m-ID` (its version stays the run id). Earlier MLflow versions
    wrote no id, and the URI stays as given."""
    if not _RUN_URI.match(pinned.requested_uri):
        return pinned
    model_id = read_mlmodel(local_path).get("model_id")
    if not isinstance(model_id, str) or not _LOGGED_URI.match(f"models:/{model_id}"):
        return pinned
    return ModelVersion(
        pinned.requested_uri, f"models:/{model_id}", None, pinned.version, pinned.download_uri
    )


def read_signature(
    pinned: ModelVersion, local_path: str, result_type: str = "double"
) -> ResolvedModel:
    """Read the input and output columns from the MLmodel file of a local copy."""
    from mlflow.models import Model

    signature = Model.load(local_path).signature
    # Without an output signature nothing says a value is required (as for inputs: NaN passes).
    unsigned_output = (OutputColumn(DEFAULT_PREDICTION, result_type, required=False, signed=False),)
    if signature is None:
        return ResolvedModel(pinned, local_path, None, unsigned_output)
    inputs = _signature_inputs(signature.inputs, pinned)
    outputs = _signature_outputs(signature.outputs, pinned) or unsigned_output
    return ResolvedModel(pinned, local_path, inputs, outputs)


def _pin_registered(uri: str, tracking_uri: str | None) -> ModelVersion:
    """`uri` is one that check_model_uri took."""
    alias = _ALIAS_URI.match(uri)
    numbered = _VERSION_URI.match(uri)
    with _registry_errors(uri, tracking_uri):
        client = _client(tracking_uri)
        if alias:
            found = client.get_model_version_by_alias(alias["name"], alias["alias"])
        else:
            assert numbered is not None
            name, version = numbered["name"], numbered["version"]
            if version.lower() == "latest":
                versions = _all_versions(client, name)
                if not versions:
                    raise ModelNotFoundError(
                        f"Model {uri} was not found in {_where(tracking_uri)}: "
                        f"registered model {name!r} has no versions."
                    )
                # The newest version whose registration finished: one still copying its files
                # (or failed) is not what `latest` means, and would stop every scheduled run.
                found = max(versions, key=lambda v: (_status(v) == "READY", int(v.version)))
                _warn_of_newer_unready(uri, found, versions)
            else:
                found = client.get_model_version(name, version)
        _require_ready(uri, found)
        pinned = f"models:/{found.name}/{found.version}"
        download_uri = client.get_model_version_download_uri(found.name, found.version)
        return ModelVersion(uri, pinned, found.name, str(found.version), download_uri)


def _all_versions(client: Any, name: str, page_size: int | None = None) -> list[Any]:
    """Every version of a registered model: a registry answers in pages (a remote one's may be
    short), and the highest version may be on any of them."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = {_quoted(name)}",
            **({"max_results": page_size} if page_size else {}),
            page_token=token,
        )
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def _quoted(name: str) -> str:
    """A model name as a string of MLflow's search filters, which take either quote."""
    return f'"{name}"' if "'" in name else f"'{name}'"


def _warn_of_newer_unready(uri: str, found: Any, versions: list[Any]) -> None:
    """`latest` passing over a newer version is worth a line in the log: a registration that
    failed stays FAILED, and every run would go on scoring with the older version unnoticed."""
    newer = sorted(
        (v for v in versions if int(v.version) > int(found.version)), key=lambda v: int(v.version)
    )
    if newer:
        _log.warning(
            "%s is version %s: newer %s not READY (%s)",
            uri,
            found.version,
            "versions are" if len(newer) > 1 else "version is",
            ", ".join(f"{v.version} {_status(v)}" for v in newer),
        )


def _status(version: Any) -> str:
    return str(getattr(version, "status", None) or "READY")


def _require_ready(uri: str, found: Any) -> None:
    """A version whose registration is pending or failed may lack files, or have some still
    being copied: scoring with it could fail midway or score with a partial model."""
    status = _status(found)
    if status != "READY":
        message = getattr(found, "status_message", None)
        raise ModelNotReadyError(
            f"Model {uri} resolves to version {found.version} of {found.name!r}, whose "
            f"registration is {status}{f' ({message})' if message else ''}, not READY: "
            "nothing was scored. Run again once it is READY, or name another version."
        )


def _download(pinned: ModelVersion, tracking_uri: str | None, download_dir: str | None) -> str:
    if Path(pinned.download_uri).is_dir():
        return pinned.download_uri
    import mlflow.artifacts

    target = download_dir or tempfile.mkdtemp(prefix="lakescore-model-")
    # runs:/ URIs of MLflow 3 logged models resolve through the global tracking URI only.
    scope = _global_tracking_uri(tracking_uri) if tracking_uri else contextlib.nullcontext()
    with _download_errors(pinned), scope:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=pinned.download_uri, dst_path=target, tracking_uri=tracking_uri
        )
    if not (Path(path) / "MLmodel").is_file():  # `runs:/RUN/some_folder`, or a version's source
        from lakescore.redaction import scrub

        raise ModelNotFoundError(
            f"Model {pinned.requested_uri} is not an MLflow model: what "
            f"{scrub(pinned.download_uri)} holds has no MLmodel file."
        )
    return str(path)


@contextlib.contextmanager
def _download_errors(pinned: ModelVersion) -> Iterator[None]:
    """A model whose files cannot be fetched (a registered version's files at `file:///` paths
    of another machine, storage that refuses them, a local disk that cannot take them): one
    sentence naming the model and where its files are, with MLflow's reason, not "not found"
    (a bad deployment, exit 2) cut to its first line: the registry said the model exists.
    A `runs:/` URI MLflow cannot download stays "not found": MLflow reports every such
    failure as a path the run lacks."""
    from mlflow.exceptions import MlflowException

    from lakescore.redaction import scrub

    uri = pinned.requested_uri
    try:
        yield
    except LakescoreError:
        raise
    except Exception as exc:
        reason = _shortened(" ".join(str(exc).split()) or type(exc).__name__)
        said = (
            f"Model {uri} (version {pinned.version}) could not be downloaded from "
            f"{scrub(pinned.download_uri)}: {reason}"
        )
        missing = isinstance(exc, FileNotFoundError) or (
            isinstance(exc, MlflowException)
            and getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        )
        if missing and _RUN_URI.match(uri):
            raise ModelNotFoundError(said) from exc
        if _looks_unreachable(reason):
            raise RegistryUnreachableError(said) from exc
        raise LakescoreError(said) from exc


def _shortened(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def _global_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `tracking_uri` for the block, then put back as it
    was, MLFLOW_TRACKING_URI included: MLflow's own `_use_tracking_uri` puts its global
    setting back, and when that was unset (a notebook configured by the variable alone) it
    unset the variable too, sending the process's later MLflow calls to ./mlflow.db."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    found = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(tracking_uri):
            yield
    finally:
        if found is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = found


def _signature_inputs(schema: Any, pinned: ModelVersion) -> tuple[InputColumn, ...] | None:
    if schema is None:
        return None
    if schema.is_tensor_spec():
        raise DeploymentError(
            f"Model {pinned.pinned_uri} has a tensor input signature; lakescore needs named "
            "columns (log the model with a pandas DataFrame input example)."
        )
    columns = []
    for spec in schema.inputs:
        if spec.name is None:
            raise DeploymentError(
                f"Model {pinned.pinned_uri} has an unnamed input column (a signature inferred "
                "from a list or a single series, as transformers pipelines log): lakescore "
                "matches input columns by name, so log the model with a pandas DataFrame input "
                "example whose columns are the input's."
            )
        columns.append(
            InputColumn(spec.name, _spark_type(spec.type, spec.name, pinned), spec.required)
        )
    return tuple(columns)


def _signature_outputs(schema: Any, pinned: ModelVersion) -> tuple[OutputColumn, ...]:
    """The signature's output columns; empty when it has none."""
    if schema is None or not schema.inputs:
        return ()
    if schema.is_tensor_spec():
        if len(schema.inputs) > 1:
            # A dict of arrays (a multi-head network) would fail the run after the whole pass.
            names = ", ".join(str(spec.name) for spec in schema.inputs)
            raise DeploymentError(
                f"Model {pinned.requested_uri} returns {len(schema.inputs)} named tensors "
                f"({names}); lakescore stores one tensor output, or named columns: wrap the "
                "model so that it returns a DataFrame with a column for each."
            )
        spec = schema.inputs[0]
        spark_type = _tensor_spark_type(spec.type, pinned)
        shape = tuple(spec.shape)
        width = shape[1] if len(shape) == 2 and shape[1] not in (-1, 1) else 1
        if width == 1:
            return (OutputColumn(DEFAULT_PREDICTION, spark_type),)
        return tuple(OutputColumn(f"{DEFAULT_PREDICTION}_{i}", spark_type) for i in range(width))
    specs = list(schema.inputs)
    if len(specs) == 1 and specs[0].name is None:
        spark_type = _spark_type(specs[0].type, None, pinned)
        return (OutputColumn(DEFAULT_PREDICTION, spark_type, specs[0].required),)
    return tuple(
        OutputColumn(
            spec.name if spec.name is not None else f"{DEFAULT_PREDICTION}_{i}",
            _spark_type(spec.type, spec.name, pinned),
            spec.required,
        )
        for i, spec in enumerate(specs)
    )


def _tensor_spark_type(dtype: Any, pinned: ModelVersion) -> str:
    """The Spark type of a tensor output, by the numpy dtype's kind and size.

    `infer_signature(X, clf.predict(X))` records string labels as `<U0` and timestamps as
    `datetime64[ns]`, so matching dtype names would miss them. An unsigned 64-bit integer has no
    Spark type that holds every value, and a type not known here is refused rather than
    guessed: a guess fails the run after the whole pass, or stores rounded values.
    """
    import numpy as np

    kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    by_kind = {
        "b": "boolean",
        "i": "int" if size <= 4 else "bigint",
        "u": "int" if size <= 2 else "bigint" if size == 4 else None,
        "f": "float" if size <= 4 else "double",
        "U": "string",
        "O": "string",
        "S": "binary",
        "M": "timestamp",
    }
    spark_type = by_kind.get(kind)
    if spark_type is None:
        raise DeploymentError(
            f"Model {pinned.pinned_uri} has a tensor output of type {np.dtype(dtype)}, which "
            "lakescore does not support (no Spark type holds every value); log the model with "
            "an output signature of a supported type."
        )
    return spark_type


def _spark_type(mlflow_type: Any, column: str | None, pinned: ModelVersion) -> str:
    name = getattr(mlflow_type, "name", str(mlflow_type))
    if name not in MLFLOW_TO_SPARK:
        raise DeploymentError(
            f"Model {pinned.pinned_uri}: column {column or '(unnamed)'} has type {mlflow_type}, "
            "which lakescore does not support yet."
        )
    return MLFLOW_TO_SPARK[name]


def content_hash(path: Path) -> str:
    """A short digest of every file under `path` (names and bytes): a model's identity."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def _client(tracking_uri: str | None) -> Any:
    import mlflow
    from mlflow.tracking import MlflowClient

    _require_existing_database(tracking_uri or mlflow.get_registry_uri())
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _require_existing_database(uri: str) -> None:
    """MLflow creates a SQLite registry that does not exist, so a mistyped path would leave an
    empty database behind and report the model as not found. Name the missing file instead."""
    if not uri.startswith("sqlite:///"):
        return
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if path and path != ":memory:" and not os.path.isfile(path):
        raise ModelNotFoundError(
            f"The MLflow registry database {os.path.abspath(path)} does not exist (tracking URI "
            f"{uri}); check model.tracking_uri, or MLFLOW_REGISTRY_URI and MLFLOW_TRACKING_URI."
        )


_FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


@contextlib.contextmanager
def _failing_fast() -> Iterator[None]:
    """MLflow retries an unreachable server for minutes by default; a batch job should not
    hang. Set where the user set nothing, for lakescore's own MLflow calls only: a notebook's
    later MLflow calls keep MLflow's defaults (they stayed set for the whole process). Runs in
    notebook threads share the process's environment (see shared_state.py)."""

    def add() -> list[str]:
        added = [key for key in _FAIL_FAST if key not in os.environ]
        os.environ.update({key: _FAIL_FAST[key] for key in added})
        return added

    def remove(added: list[str]) -> None:
        for key in added:
            os.environ.pop(key, None)

    with changed_while_held("MLflow fail-fast settings", add, remove):
        yield


@contextlib.contextmanager
def _registry_errors(uri: str, tracking_uri: str | None) -> Iterator[None]:
    """Turn MLflow and network exceptions into one clear sentence."""
    from mlflow.exceptions import MlflowException

    where = _where(tracking_uri)
    try:
        yield
    except LakescoreError:
        raise
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise ModelNotFoundError(f"Model {uri} was not found in {where}: {text}") from exc
        if _looks_unreachable(text):
            raise RegistryUnreachableError(
                f"MLflow registry {where} could not be reached while resolving {uri}: {text}"
            ) from exc
        raise LakescoreError(f"MLflow failed while resolving {uri} in {where}: {text}") from exc
    except (OSError, ConnectionError) as exc:
        raise RegistryUnreachableError(
            f"MLflow registry {where} could not be reached while resolving {uri}: {exc}"
        ) from exc
    except Exception as exc:
        if _looks_unreachable(str(exc)):
            raise RegistryUnreachableError(
                f"MLflow registry {where} could not be reached while resolving {uri}: "
                f"{type(exc).__name__}"
            ) from exc
        raise


def _where(tracking_uri: str | None) -> str:
    """The registry asked: `model.tracking_uri`, else the one MLflow resolves (which is
    MLFLOW_REGISTRY_URI when set, not MLFLOW_TRACKING_URI)."""
    import mlflow

    from lakescore.redaction import scrub

    return scrub(tracking_uri or mlflow.get_registry_uri() or "the default MLflow store")


def _looks_unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(
        marker in lowered
        for marker in ("max retries", "connection", "unable to open database", "timed out")
    )
