"""What a model was logged with that this Python does not have.

Executors load models without MLflow's requirement check (see model_cache: it costs every Python
worker half a second, and its warning lands in executor logs nobody reads). A model pickled with
scikit-learn 1.5 may load under 1.9 and predict differently, so the driver checks once, where
the warning is seen; on a cluster the executors' environment is assumed to be the driver's.
"""

from __future__ import annotations

import logging
import sys

from lakescore.mlmodel import pyfunc_flavor, read_mlmodel

_log = logging.getLogger(__name__)
# Packages MLflow's own check leaves out (Databricks serving helpers).
_IGNORED = frozenset({"databricks-feature-lookup", "databricks-agents"})


def environment_mismatches(local_path: str) -> list[str]:
    """One line per requirement of the model's `requirements.txt` this environment does not
    satisfy, and one if the model was saved by another Python minor version. A warning only:
    a requirement it cannot check (a `-r` file, a module without a version) is skipped."""
    # Private MLflow helpers, the same that mlflow.pyfunc.load_model's own warning uses (pinned
    # mlflow version in pyproject.toml).
    from mlflow.pyfunc import _get_pip_requirements_from_model_path
    from mlflow.utils.requirements_utils import _check_requirement_satisfied

    try:
        requirements = _get_pip_requirements_from_model_path(local_path)
    except Exception:
        _log.debug("could not read the requirements of %s", local_path, exc_info=True)
        requirements = []
    found = []
    for requirement in requirements:
        try:
            mismatch = _check_requirement_satisfied(requirement)
        except Exception:  # as MLflow's check: `dataclasses` has no __version__
            _log.debug("could not check requirement %r", requirement, exc_info=True)
            continue
        if mismatch is not None and mismatch.package_name.lower() not in _IGNORED:
            found.append(str(mismatch))
    saved_with = _python_version(local_path)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if saved_with and ".".join(saved_with.split(".")[:2]) != running:
        found.append(f"python (current: {sys.version.split()[0]}, saved with: {saved_with})")
    return found


def _python_version(local_path: str) -> str | None:
    version = pyfunc_flavor(read_mlmodel(local_path)).get("python_version")
    return str(version) if version else None
