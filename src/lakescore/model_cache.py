"""Per-Python-worker cache of loaded models.

It lives in its own module (as mlflow's SparkModelCache does) so that it survives across tasks in
a reused Python worker: the model is loaded once per worker process, not once per batch or task.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from lakescore.mlmodel import pyfunc_flavor, read_mlmodel

_MAX_MODELS = 2
_models: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
_FOLDER = "lakescore-models"  # in the SparkFiles folder, next to the shipped archives


def get_or_load(archive_name: str) -> Any:
    """The pyfunc model shipped as `archive_name` (SparkContext.addFile), loaded at most once."""
    with _lock:
        if archive_name in _models:
            _models.move_to_end(archive_name)
            return _models[archive_name]
        import mlflow.pyfunc

        local = _extract(archive_name)
        _forget_other_models_code(local)
        # suppress_warnings skips mlflow's check of the model's pip requirements against this
        # environment: it scans every installed package (0.5 s of CPU per Python worker) to
        # print a warning into an executor log nobody reads.
        model = mlflow.pyfunc.load_model(local, suppress_warnings=True)
        _models[archive_name] = model
        while len(_models) > _MAX_MODELS:
            _models.popitem(last=False)
        return model


def _extract(archive_name: str) -> str:
    """The archive unpacked once per executor, in Spark's own folder for shipped files, which
    Spark removes with the application (a folder of the system's temporary one stayed behind
    after every run, a copy per Python worker). Unpacked aside, then renamed into place: the
    executor's other workers either find it whole or unpack their own and drop it."""
    from pyspark import SparkFiles

    archive = SparkFiles.get(archive_name)
    models = os.path.join(SparkFiles.getRootDirectory(), _FOLDER)
    target = os.path.join(models, archive_name)
    if os.path.isfile(os.path.join(target, "MLmodel")):
        return target
    os.makedirs(models, exist_ok=True)
    unpacking = tempfile.mkdtemp(prefix=f".{archive_name}-", dir=models)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(unpacking)
    try:
        os.rename(unpacking, target)
    except OSError:  # another worker of this executor renamed its copy first
        shutil.rmtree(unpacking, ignore_errors=True)
    return target


def _forget_other_models_code(model_dir: str) -> None:
    """MLflow puts a model's `code_paths` first on sys.path, but a module of the same name that
    another model imported in this worker stays in sys.modules: version 2 of a model would run
    version 1's `features.py`. Such modules are dropped, so the new model imports its own; a
    model loaded before keeps the modules it holds."""
    code = _code_folder(model_dir)
    if code is None:
        return
    ours = os.path.realpath(code) + os.sep
    shipped = os.path.realpath(os.path.dirname(model_dir)) + os.sep
    for name, module in list(sys.modules.items()):
        file = os.path.realpath(getattr(module, "__file__", None) or "")
        if file.startswith(shipped) and not file.startswith(ours):
            del sys.modules[name]


def _code_folder(model_dir: str) -> str | None:
    """The folder of the model's `code_paths`, from its MLmodel file, if it has one."""
    code = pyfunc_flavor(read_mlmodel(model_dir)).get("code")
    folder = Path(model_dir, code) if code else None
    return str(folder) if folder is not None and folder.is_dir() else None
