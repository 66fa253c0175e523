"""A notebook's SparkSession belongs to its user: lakescore runs in it without changing its
settings, writes correct times whatever its time settings are, and refuses one without Delta."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakescore.config import load_deployment
from lakescore.errors import LakescoreError
from lakescore.runner import score
from lakescore.session import get_spark, require_delta

BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


@contextmanager
def session_settings(spark: Any, **settings: str | None) -> Iterator[None]:
    """Set (or, with None, unset) session settings for a block, then put them back."""
    keys = {key.replace("__", "."): value for key, value in settings.items()}
    before = {key: spark.conf.get(key, None) for key in keys}
    for key, value in keys.items():
        spark.conf.unset(key) if value is None else spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)


def test_a_run_leaves_the_sessions_arrow_batch_size_as_it_found_it(
    spark: Any, lakehouse: Any
) -> None:
    """The deployment's batch size applies to the run's pass only: the user's own setting (or its
    absence) is back afterwards, for their next pandas UDF."""
    deployment = load_deployment(lakehouse(rows=60, files=1, bad=False))
    with session_settings(spark, **{BATCH.replace(".", "__"): "1234"}):
        assert score(spark, deployment).succeeded
        assert spark.conf.get(BATCH) == "1234"
    with session_settings(spark, **{BATCH.replace(".", "__"): None}):
        assert score(spark, deployment).succeeded
        assert spark.conf.get(BATCH, None) is None


def test_scoring_times_are_utc_instants_in_a_session_whose_timestamps_default_to_ntz(
    spark: Any, lakehouse: Any
) -> None:
    """With spark.sql.timestampType=TIMESTAMP_NTZ and a Tokyo session time zone, `_scored_at`
    and `_quarantined_at` are still `timestamp` columns holding the run's instant (they were
    timestamp_ntz holding Tokyo's wall time, and refused by an existing table)."""
    deployment = load_deployment(lakehouse(rows=200, files=1))
    before = datetime.now(UTC) - timedelta(seconds=1)
    settings = {
        "spark__sql__timestampType": "TIMESTAMP_NTZ",
        "spark__sql__session__timeZone": "Asia/Tokyo",
    }
    with session_settings(spark, **settings):
        assert score(spark, deployment).succeeded
        assert score(spark, deployment).succeeded  # against the tables the first run made
    after = datetime.now(UTC)
    for table, column in (
        (deployment.output.path, "_scored_at"),
        (deployment.quarantine.path, "_quarantined_at"),
    ):
        frame = spark.read.format("delta").load(table)
        assert dict(frame.dtypes)[column] == "timestamp"
        # The suite's session is in UTC: collected values are UTC wall times.
        stamps = frame.select(column).distinct().collect()
        assert stamps
        for row in stamps:
            stamp = row[0].replace(tzinfo=UTC)
            assert before <= stamp <= after, (column, stamp, before, after)


def test_a_borrowed_session_keeps_its_log_level(spark: Any) -> None:
    """get_spark() in a notebook returns the notebook's session without setting its log level,
    which is the user's (and on a shared cluster everyone's)."""
    root = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getRootLogger()
    before = str(root.getLevel())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        assert get_spark() is spark
        assert str(root.getLevel()) == "ERROR"
    finally:
        spark.sparkContext.setLogLevel(before)  # the level the session had, for later tests


def test_a_session_with_the_delta_extension_but_not_its_catalog_is_refused(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DeltaCatalog the first Delta query fails with a long AnalysisException; lakescore
    says in one sentence what the session lacks. Databricks Runtime, whose Delta is built in
    without either setting, is not checked."""
    no_catalog = spark.newSession()
    no_catalog.conf.unset("spark.sql.catalog.spark_catalog")
    require_delta(spark)
    with pytest.raises(LakescoreError, match=r"has no Delta Lake.*DeltaCatalog"):
        require_delta(no_catalog)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    require_delta(no_catalog)


def test_score_refuses_a_session_without_delta_before_it_records_anything(
    spark: Any, lakehouse: Any
) -> None:
    """`score(spark, …)` with a session built by hand: the command's checks, not Delta's error
    from the first table it touches."""
    deployment = load_deployment(lakehouse(rows=20, files=1))
    no_catalog = spark.newSession()
    no_catalog.conf.unset("spark.sql.catalog.spark_catalog")
    with pytest.raises(LakescoreError, match=r"has no Delta Lake"):
        score(no_catalog, deployment, "no-delta")
    assert not Path(deployment.runs.path).exists()


def test_get_spark_from_another_thread_borrows_the_session_unchanged(spark: Any) -> None:
    """The active session belongs to a thread: from a notebook's worker thread, get_spark()
    built one with lakescore's settings, which changed the user's session (time zone, shuffle
    partitions) for every thread."""
    found: list[Any] = []
    with session_settings(spark, spark__sql__shuffle__partitions="3"):
        worker = threading.Thread(target=lambda: found.append(get_spark()))
        worker.start()
        worker.join()
        assert len(found) == 1 and found[0] is spark
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"


def test_a_models_datetime_output_is_a_timestamp_in_a_session_whose_timestamps_default_to_ntz(
    spark: Any, tmp_path: Path
) -> None:
    """The signature's `datetime` means an instant (timestamp) whatever spark.sql.timestampType
    says: as text it became timestamp_ntz in such a session, and an existing table refused it."""
    import pyarrow as pa
    import scoring_models
    from lakehouses import parquet_lakehouse
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(Schema([ColSpec("datetime", "n")]), Schema([ColSpec("datetime")]))
    model = scoring_models.save_echo(tmp_path / "echo-time", signature)
    due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    times = pa.array([due, due], pa.timestamp("us", tz="UTC"))
    table = pa.table({"id": ["a", "b"], "n": times})
    loaded = load_deployment(parquet_lakehouse(tmp_path, model, table))
    assert score(spark, loaded).succeeded
    settings = {
        "spark__sql__timestampType": "TIMESTAMP_NTZ",
        "spark__sql__session__timeZone": "Asia/Tokyo",
    }
    with session_settings(spark, **settings):
        assert score(spark, loaded).succeeded
    frame = spark.read.format("delta").load(loaded.output.path)
    assert dict(frame.dtypes)["prediction"] == "timestamp"
    stamps = {row[0].replace(tzinfo=UTC) for row in frame.select("prediction").collect()}
    assert stamps == {due}


def test_overlapping_runs_in_one_session_put_the_users_setting_back_after_the_last(
    spark: Any,
) -> None:
    """Runs in threads of one session share its settings: the first to start saves the user's
    value, and it comes back only when the last one ends (not when the first one does)."""
    from lakescore.session import session_conf

    with session_settings(spark, **{BATCH.replace(".", "__"): None}):
        with session_conf(spark, BATCH, "500"):
            with session_conf(spark, BATCH, "20000"):
                assert spark.conf.get(BATCH) == "20000"
            assert spark.conf.get(BATCH, None) is not None  # the first run is still going
        assert spark.conf.get(BATCH, None) is None
