"""The MLmodel file of a model's local copy, read as plain YAML.

The driver (the logged model's id, the Python it was saved with) and the executors (the
model's `code_paths`) each need a field or two; MLflow's `Model.load` builds the signature
and every flavor's objects for that. Only yaml is imported, so executors can use it too.
"""

from __future__ import annotations

import os
from typing import Any

import yaml


def read_mlmodel(model_dir: str) -> dict[str, Any]:
    """The MLmodel file of the model in `model_dir`, as a mapping (empty if the file is)."""
    with open(os.path.join(model_dir, "MLmodel"), encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    return meta if isinstance(meta, dict) else {}


def pyfunc_flavor(meta: dict[str, Any]) -> dict[str, Any]:
    """The `python_function` flavor's settings of a read MLmodel file (empty if it has none)."""
    flavor = (meta.get("flavors") or {}).get("python_function")
    return flavor if isinstance(flavor, dict) else {}
