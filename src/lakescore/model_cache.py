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
# The code folder of each cached model that has `code_paths` (see _use_own_code).
_code: dict[str, str] = {}
_lock = threading.Lock()
# The model whose code this worker last set up: another task of it changes nothing, and the scan
# of every loaded module that switching costs (about 50 ms) is skipped.
_current: str | None = None
_FOLDER = "lakescore-models"  # in the SparkFiles folder, next to the shipped archives


def get_or_load(archive_name: str) -> Any:
    """The pyfunc model shipped as `archive_name` (SparkContext.addFile), loaded at most once."""
    global _current
    with _lock:
        if archive_name in _models:
            _models.move_to_end(archive_name)
            if _current != archive_name:
                _use_own_code(archive_name)
                _current = archive_name
            return _models[archive_name]
        import mlflow.pyfunc

        local = _extract(archive_name)
        code = _code_folder(local)
        _forget_other_models_code(code)
        _current = None  # set once loaded: a model that fails to load set nothing up
        # suppress_warnings skips mlflow's check of the model's pip requirements against this
        # environment: it scans every installed package (0.5 s of CPU per Python worker) to
        # print a warning into an executor log nobody reads.
        model = mlflow.pyfunc.load_model(local, suppress_warnings=True)
        _current = archive_name
        _models[archive_name] = model
        if code is not None:
            _code[archive_name] = code
        while len(_models) > _MAX_MODELS:
            dropped, _ = _models.popitem(last=False)
            _code.pop(dropped, None)
        return model


def _use_own_code(archive_name: str) -> None:
    """A model the worker turns back to (a notebook scoring A, then B, then A again) imports its
    own modules again: one that imports them when it predicts would otherwise find the other
    model's module of the same name in sys.modules, or first on sys.path. Modules it imported
    while it was loaded are held by its objects, and stay its own."""
    folder = _code.get(archive_name)
    _forget_other_models_code(folder)
    if folder is not None:
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)


def _extract(archive_name: str) -> str:
    """The archive unpacked once per executor, in Spark's own folder for shipped files, which
    Spark removes with the application (a folder of the system's temporary one stayed behind
    after every run, a copy per Python worker). Unpacked aside, then renamed into place: the
    executor's other workers either find it whole or unpack their own and drop it."""
    from pyspark import SparkFiles

    archive = SparkFiles.get(archive_name)
    models = _models_folder()
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


def _models_folder() -> str:
    """Where this executor unpacks the shipped models."""
    from pyspark import SparkFiles

    return os.path.join(SparkFiles.getRootDirectory(), _FOLDER)


def _forget_other_models_code(code: str | None) -> None:
    """MLflow puts a model's `code_paths` first on sys.path, but a module of the same name that
    another model imported in this worker stays in sys.modules: version 2 of a model would run
    version 1's `features.py`. Modules of other shipped models are dropped, so the model in use
    imports its own (`code`: its code folder; None: it has none)."""
    ours = os.path.join(os.path.realpath(code), "") if code else None
    shipped = os.path.join(os.path.realpath(_models_folder()), "")
    for name, module in list(sys.modules.items()):
        file = os.path.realpath(getattr(module, "__file__", None) or "")
        if file.startswith(shipped) and not (ours and file.startswith(ours)):
            del sys.modules[name]


def _code_folder(model_dir: str) -> str | None:
    """The folder of the model's `code_paths`, from its MLmodel file, if it has one."""
    code = pyfunc_flavor(read_mlmodel(model_dir)).get("code")
    folder = Path(model_dir, code) if code else None
    return str(folder) if folder is not None and folder.is_dir() else None
