"""Creating lakescore's Delta tables when another run creates the same table at that moment."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import types as T

from lakescore.io import ensure_delta_table

SCHEMA = T.StructType([T.StructField("id", T.LongType())])


def test_a_table_another_writer_is_creating_is_used_not_an_error(
    spark: Any, tmp_path: Path
) -> None:
    # Another creator is writing its first commit (a temporary file in _delta_log, renamed
    # when complete): Delta refuses to create a table in a folder that is not empty.
    path = tmp_path / "table"
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / ".00000000000000000000.json.in-flight.tmp").write_text("{}")

    def commit_soon() -> None:
        time.sleep(1.0)
        spark.range(3).write.format("delta").save(str(path))

    other = threading.Thread(target=commit_soon)
    other.start()
    try:
        ensure_delta_table(spark, str(path), SCHEMA, {"id": "row id"})
    finally:
        other.join()
    assert DeltaTable.isDeltaTable(spark, str(path))
    assert spark.read.format("delta").load(str(path)).count() == 3
