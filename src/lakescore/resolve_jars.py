"""Resolve Delta Lake's jars from Maven Central once, in a child process, and print their paths.

Run by session.delta_jars() with its output captured, so Ivy's resolution report never reaches
the operator's terminal; later sessions reuse the cached list.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession

from lakescore.session import DELTA_PACKAGE


def main() -> int:
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("lakescore-resolve-jars")
        .config("spark.jars.packages", DELTA_PACKAGE)
        .config("spark.ui.enabled", "false")
        .config("spark.api.mode", "classic")  # as lakescore's sessions: Connect has no jars
        .getOrCreate()
    )
    jars = spark.sparkContext.getConf().get("spark.jars", "") or ""
    spark.stop()
    paths = [j.removeprefix("file://").removeprefix("file:") for j in jars.split(",") if j]
    if not any("delta-spark" in p for p in paths):
        print(f"Spark resolved no Delta jar for {DELTA_PACKAGE}", file=sys.stderr)
        return 1
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
