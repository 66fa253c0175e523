"""Inputs on storage other than the driver's disk: every check of a path asks the file system
the path names, as Spark does, never the driver's local folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakescore.config import InputConfig
from lakescore.errors import InputError
from lakescore.io import read_input

MOUNT = "fs.viewfs.mounttable.default.link./lakescore-test"


def test_a_delta_input_on_a_file_system_without_an_authority_is_read(
    spark: Any, tmp_path: Path
) -> None:
    """`hdfs:/data/t` or `dbfs:/mnt/t` (one slash), or `/data/t` on a cluster whose default file
    system is HDFS: the Delta input's existence was checked on the driver's disk, and such an
    input was reported missing. Hadoop's ViewFs, mounting a local folder, stands in for them."""
    table = tmp_path / "meters"
    spark.range(5).write.format("delta").save(str(table))
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set(MOUNT, tmp_path.as_uri())
    try:
        data = read_input(spark, InputConfig(format="delta", path="viewfs:/lakescore-test/meters"))
        assert data.frame.count() == 5
        assert data.table_version == 0
        assert all(f.startswith("viewfs:/lakescore-test/meters/") for f in data.files)
        with pytest.raises(InputError, match="Input viewfs:/lakescore-test/gone does not exist"):
            read_input(spark, InputConfig(format="delta", path="viewfs:/lakescore-test/gone"))
    finally:
        hadoop.unset(MOUNT)


def test_storage_settings_made_on_the_session_reach_the_listing_and_checks(
    spark: Any, tmp_path: Path
) -> None:
    """A notebook sets its storage's settings on the session (`spark.conf.set(
    "fs.azure.account.key...", ...)`): Spark's reads use them, and so must lakescore's own
    listing and existence checks, which used the SparkContext's configuration alone. A ViewFs
    mount set on the session stands in for a storage account's key."""
    folder = tmp_path / "meters"
    spark.range(6).repartition(2).write.parquet(str(folder))
    link = "fs.viewfs.mounttable.default.link./lakescore-session"
    spark.conf.set(link, tmp_path.as_uri())
    spark.conf.set("fs.viewfs.impl.disable.cache", "true")  # not another test's mount table
    try:
        data = read_input(
            spark, InputConfig(format="parquet", path="viewfs:/lakescore-session/meters")
        )
        assert data.frame.count() == 6
        assert len(data.files) == 2
    finally:
        spark.conf.unset(link)
        spark.conf.unset("fs.viewfs.impl.disable.cache")
