"""What a model was logged with that this Python does not have.

Executors load models without MLflow's requirement check (see model_cache: it costs every Python
worker half a second, and its warning lands in executor logs nobody reads). A model pickled with
scikit-learn 1.5 may load under 1.9 and predict differently, so the driver checks once, where
the warning is seen; on a cluster the executors' environment is assumed to be the driver's.
"""

from __future__ import annotations

import os
import sys

import yaml


def environment_mismatches(local_path: str) -> list[str]:
    """One line per requirement of the model's `requirements.txt` this environment does not
    satisfy, and one if the model was saved by another Python minor version."""
    # Private MLflow helpers, the same that mlflow.pyfunc.load_model's own warning uses (pinned
    # mlflow version in pyproject.toml).
    from mlflow.pyfunc import _get_pip_requirements_from_model_path
    from mlflow.utils.requirements_utils import _check_requirement_satisfied

    found = [
        str(mismatch)
        for requirement in _get_pip_requirements_from_model_path(local_path)
        if (mismatch := _check_requirement_satisfied(requirement)) is not None
    ]
    saved_with = _python_version(local_path)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if saved_with and ".".join(saved_with.split(".")[:2]) != running:
        found.append(f"python (current: {sys.version.split()[0]}, saved with: {saved_with})")
    return found


def _python_version(local_path: str) -> str | None:
    with open(os.path.join(local_path, "MLmodel"), encoding="utf-8") as handle:
        meta = yaml.safe_load(handle) or {}
    version = ((meta.get("flavors") or {}).get("python_function") or {}).get("python_version")
    return str(version) if version else None
