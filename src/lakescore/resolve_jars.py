"""Resolve Delta Lake's jars from Maven Central once, in a child process, and print their paths.

Run by session.delta_jars() with its output captured, so Ivy's resolution report never reaches
the operator's terminal; later sessions reuse the cached list.
"""

from __future__ import annotations

import sys
from urllib.parse import unquote, urlparse

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
    paths = jar_paths(jars)
    if not any("delta-spark" in p for p in paths):
        print(f"Spark resolved no Delta jar for {DELTA_PACKAGE}", file=sys.stderr)
        return 1
    print("\n".join(paths))
    return 0


def jar_paths(setting: str) -> list[str]:
    """The local paths of `spark.jars`, which Spark gives as URIs (`file:/home/my%20home/…`)."""
    return [
        unquote(urlparse(jar).path) if jar.startswith("file:") else jar
        for jar in setting.split(",")
        if jar
    ]


if __name__ == "__main__":
    sys.exit(main())
