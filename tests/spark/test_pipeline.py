"""Reading with lineage, the split into scored and quarantined, and scoring each row once."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from conftest import register_counting_model
from pyspark.sql import functions as F

from lakescore import pipeline
from lakescore.config import InputConfig, Rule, load_deployment
from lakescore.errors import DeploymentError
from lakescore.io import read_input
from lakescore.model import resolve_model
from lakescore.model_shipping import ship_model
from lakescore.runner import score
from lakescore.scoring import scoring_udf


def test_parquet_rows_keep_their_source_file_and_its_modification_time(
    spark: Any, lakehouse: Any
) -> None:
    deployment = load_deployment(lakehouse(rows=90, files=3, bad=False))
    data = read_input(spark, deployment.input)
    files = sorted(Path(deployment.input.path).glob("*.parquet"))
    per_file = {
        r["_source_file"]: (r["n"], r["modified"])
        for r in data.frame.groupBy("_source_file")
        .agg(F.count("*").alias("n"), F.max("_source_file_modified_at").alias("modified"))
        .collect()
    }
    assert len(data.files) == 3
    assert sorted(Path(p.removeprefix("file:")).name for p in per_file) == [f.name for f in files]
    for path, (rows, modified) in per_file.items():
        local = Path(path.removeprefix("file:"))
        assert rows == 30
        mtime = datetime.fromtimestamp(os.stat(local).st_mtime, tz=UTC)
        assert abs(modified.replace(tzinfo=UTC) - mtime).total_seconds() < 1
    assert data.frame.where(F.col("_source_table_version").isNotNull()).count() == 0


def test_delta_input_records_the_table_version_read(spark: Any, lakehouse: Any) -> None:
    deployment = load_deployment(lakehouse(rows=40, files=2, fmt="delta", bad=False))
    path = deployment.input.path
    more = (
        spark.read.format("delta")
        .load(path)
        .limit(10)
        .withColumn("meter_id", F.concat(F.lit("X"), "meter_id"))
    )
    more.write.format("delta").mode("append").save(path)  # version 1
    data = read_input(spark, InputConfig("delta", path))
    versions = {r[0] for r in data.frame.select("_source_table_version").distinct().collect()}
    assert data.table_version == 1
    assert versions == {1}
    assert data.frame.where(F.col("_source_file").endswith(".parquet")).count() == 50


def test_every_row_is_either_scored_or_quarantined_never_both(
    spark: Any, lakehouse: Any, registry: Any
) -> None:
    deployment = load_deployment(lakehouse(rows=400, model="models:/sk_meter/1"))
    model = resolve_model(deployment.model.uri, registry.tracking_uri)
    data = read_input(spark, deployment.input)
    inputs = pipeline.model_inputs(model, data.frame, "meter_id")
    validated = pipeline.validate(data.frame, inputs, (Rule("nonneg", "kwh_7d >= 0"),))
    stamp = pipeline.RunStamp("run-split", datetime.now(UTC), model)
    udf = scoring_udf(
        ship_model(spark, model.local_path),
        inputs,
        model.outputs,
        model.describe(),
        pipeline.VALID,
    )
    staged = pipeline.staged(validated, inputs, model.outputs, udf, ["meter_id"], False).cache()
    scored = pipeline.predictions(staged, stamp)
    quarantined = pipeline.quarantine(staged, validated.input_columns, stamp)
    assert staged.where("_score_error IS NOT NULL").count() == 0
    assert quarantined.count() > 0

    scored_keys = scored.select("meter_id")
    quarantined_keys = quarantined.select("meter_id")
    all_keys = data.frame.select("meter_id")
    assert scored_keys.join(quarantined_keys, "meter_id").count() == 0
    assert_df_equality(scored_keys.unionByName(quarantined_keys), all_keys, ignore_row_order=True)
    assert quarantined.where(F.size("_errors") == 0).count() == 0
    assert scored.columns == [
        "meter_id",
        "prediction",
        "_run_id",
        "_model_name",
        "_model_version",
        "_model_uri",
        "_scored_at",
        "_source_file",
        "_source_file_modified_at",
    ]
    assert {r[0] for r in scored.select("prediction").distinct().collect()} <= {0, 1}


def test_each_valid_row_reaches_the_model_once_and_the_model_loads_once_per_worker(
    spark: Any, lakehouse: Any, registry: Any
) -> None:
    # A model of its own: a worker that loaded another test's copy would not load it again.
    counting_log = register_counting_model(registry, "counting_once")
    deployment = load_deployment(
        lakehouse(rows=1_000, files=4, model="models:/counting_once/1", scoring={"batch_size": 50})
    )
    result = score(spark, deployment)

    events = [line.split() for line in counting_log.read_text().splitlines()]
    batches = [e for e in events if e[0] == "batch"]
    loads = Counter(e[1] for e in events if e[0] == "load")
    assert sum(int(e[2]) for e in batches) == result.record.rows_scored
    assert result.record.rows_scored > 900
    assert max(int(e[2]) for e in batches) <= 50
    assert len(batches) >= 20
    assert set(loads.values()) == {1}, f"a worker loaded the model more than once: {loads}"
    assert set(loads) == {e[1] for e in batches}


def test_a_second_run_in_the_same_session_uses_the_model_its_workers_already_loaded(
    spark: Any, lakehouse: Any, registry: Any
) -> None:
    registry.counting_log.unlink(missing_ok=True)
    deployment = load_deployment(
        lakehouse(rows=400, files=2, model="models:/counting/1", scoring={"batch_size": 50})
    )
    score(spark, deployment)
    first = registry.counting_log.read_text().splitlines()
    score(spark, deployment)
    second = registry.counting_log.read_text().splitlines()[len(first) :]

    def workers(lines: list[str], kind: str) -> list[str]:
        return [line.split()[1] for line in lines if line.startswith(kind)]

    both = set(workers(first, "batch")) & set(workers(second, "batch"))
    assert both, "no Python worker scored in both runs: nothing to check"
    reloaded = both & set(workers(second, "load"))
    assert not reloaded, f"worker(s) {sorted(reloaded)} loaded the model again for the second run"


def test_a_second_run_in_the_same_session_reuses_the_code_spark_generated_for_the_first(
    spark: Any, lakehouse: Any
) -> None:
    # A run uses about as many generated classes as Spark's default code cache holds (100), so
    # with that default every run compiled a third of them again, whatever ran before.
    deployment = load_deployment(lakehouse(rows=200, files=2))
    compilations = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    compiled = compilations.METRIC_COMPILATION_TIME()

    before = compiled.getCount()
    score(spark, deployment)
    first = compiled.getCount() - before
    score(spark, deployment)
    second = compiled.getCount() - before - first

    # About 6 classes are new in every run: the commits carry the run's time as a literal, and
    # Delta's log queries the table version, in their generated code. With 100 entries: 22-44.
    assert second <= 10, f"the second run compiled {second} classes again (the first {first})"


def test_respell_names_columns_as_wanted_and_refuses_two_spellings(spark: Any) -> None:
    frame = spark.createDataFrame([("a", 1.0)], "METER_ID string, KWh double")
    assert_df_equality(
        pipeline.respell(frame, ["meter_id", "kwh"]),
        spark.createDataFrame([("a", 1.0)], "meter_id string, kwh double"),
    )
    with pytest.raises(DeploymentError, match="spelled KWH and kwh"):
        pipeline.respell(frame, ["kwh", "KWH"])


def test_a_shipped_model_lives_as_long_as_the_jvm(
    spark: Any, lakehouse: Any, tmp_path: Path
) -> None:
    """Executors fetch every file added to the SparkContext (a new one fetches them all): an
    archive removed when the notebook's Python exits, under a SparkContext that lives on
    (Databricks' `restartPython()`), failed every later task on a new executor. Its folder is
    Spark's own, removed when the JVM shuts down."""
    deployment = load_deployment(lakehouse(rows=20, files=1, bad=False))
    model = resolve_model(deployment.model.uri, deployment.model.tracking_uri, str(tmp_path))
    name = ship_model(spark, model.local_path)
    jvm = spark.sparkContext._jvm
    archive = next(
        Path(p) for p in map(str, spark.sparkContext.listFiles) if p.endswith(f"/{name}")
    )
    folder = jvm.java.io.File(str(archive.parent).removeprefix("file:"))
    assert jvm.org.apache.spark.util.ShutdownHookManager.hasShutdownDeleteDir(folder)
