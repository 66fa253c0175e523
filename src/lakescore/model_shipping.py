"""Shipping the driver's copy of a model to the executors, through Spark (never the MLflow
server): once per model content and SparkContext, so workers that loaded it keep it."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from py4j.protocol import Py4JError
from pyspark.sql import SparkSession

from lakescore.model import content_hash


def ship_model(spark: SparkSession, local_path: str) -> str:
    """Zip the driver's copy of the model and hand it to every executor through Spark.

    Executors read it with SparkFiles, so they never contact the MLflow server. Returns the
    archive's file name. A model with the same files shipped before in this SparkContext keeps
    its archive, so Python workers that already loaded it for an earlier run (model_cache) do
    not load it again. The archive must outlive the run, and the Python process too: executors
    re-check every file added to the SparkContext before each task (a new executor fetches them
    all), and a notebook's Python may restart under a SparkContext that lives on (Databricks'
    `restartPython()`). So it stays in a folder the JVM removes when it exits.
    """
    key = (spark.sparkContext.applicationId, content_hash(Path(local_path)))
    with _shipped_lock:
        if key not in _shipped:
            # Unique per context too: Spark refuses a second file of the same name.
            name = f"lakescore-model-{key[1]}-{uuid.uuid4().hex[:8]}"
            archive = shutil.make_archive(
                os.path.join(_ship_folder(spark), name), "zip", root_dir=local_path
            )
            spark.sparkContext.addFile(archive)
            _shipped[key] = os.path.basename(archive)
        return _shipped[key]


_shipped: dict[tuple[str, str], str] = {}  # (application id, model content) -> archive name
_shipped_lock = threading.Lock()


def _ship_folder(spark: SparkSession) -> str:
    """A folder for the SparkContext's archives, removed by the JVM's shutdown (Spark's own
    temporary folders); one Python removes at exit where Spark's call is missing."""
    application = spark.sparkContext.applicationId
    if application not in _folders:
        jvm = spark.sparkContext._jvm
        try:
            made = jvm.org.apache.spark.util.Utils.createTempDir(  # type: ignore[union-attr]
                tempfile.gettempdir(), "lakescore-ship"
            )
            _folders[application] = str(made.getAbsolutePath())
        except Py4JError:
            folder = tempfile.mkdtemp(prefix="lakescore-ship-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _folders[application] = folder
    return _folders[application]


_folders: dict[str, str] = {}  # application id -> its archives' folder (under _shipped_lock)
