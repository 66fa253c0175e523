"""Per-Python-worker cache of loaded models.

It lives in its own module (as mlflow's SparkModelCache does) so that it survives across tasks in
a reused Python worker: the model is loaded once per worker process, not once per batch or task.
"""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from typing import Any

_MAX_MODELS = 2
_models: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()


def get_or_load(archive_name: str) -> Any:
    """The pyfunc model shipped as `archive_name` (SparkContext.addFile), loaded at most once."""
    with _lock:
        if archive_name in _models:
            _models.move_to_end(archive_name)
            return _models[archive_name]
        import mlflow.pyfunc

        # suppress_warnings skips mlflow's check of the model's pip requirements against this
        # environment: it scans every installed package (0.5 s of CPU per Python worker) to
        # print a warning into an executor log nobody reads.
        model = mlflow.pyfunc.load_model(_extract(archive_name), suppress_warnings=True)
        _models[archive_name] = model
        while len(_models) > _MAX_MODELS:
            _models.popitem(last=False)
        return model


def _extract(archive_name: str) -> str:
    from pyspark import SparkFiles

    archive = SparkFiles.get(archive_name)
    target = os.path.join(tempfile.gettempdir(), f"lakescore-{os.getpid()}", archive_name)
    if not os.path.isfile(os.path.join(target, "MLmodel")):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
    return target
