"""What sending more columns to the Python workers costs: the model's inputs only, against every
column of a row (the key, the source file and a text column as well).

    .venv/bin/python bench/columns.py --rows 2000000   # after bench/run.py made that input

One warm session; each variant runs a pandas UDF that returns a constant, so only the Arrow
transfer and the conversion to pandas are timed, and writes nothing (Spark's `noop` format).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):  # run as `python bench/columns.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import datagen

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "data")
    args = parser.parse_args(argv)
    inputs = args.workdir / "inputs" / f"rows-{args.rows}"
    if not inputs.is_dir():
        parser.error(f"{inputs} does not exist: run bench/run.py --rows {args.rows} first")

    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from lakescore.session import get_spark

    spark = get_spark()
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
    frame = (
        spark.read.parquet(str(inputs))
        .withColumn("_source_file", F.input_file_name())
        .withColumn("note", F.concat(F.lit("customer note "), F.col(datagen.KEY)))
    )

    @pandas_udf("long")
    def constant(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        for batch in batches:
            yield pd.Series([0] * len(batch))

    variants = {
        f"model inputs ({len(datagen.FEATURES)} columns)": F.struct(*datagen.FEATURES),
        "every column (+ key, file path, text)": F.struct(*frame.columns),
    }
    for repetition in range(1, args.repeat + 1):
        for name, column in variants.items():
            started = time.perf_counter()
            scored = frame.select(F.col(datagen.KEY), constant(column).alias("x"))
            scored.write.format("noop").mode("overwrite").save()
            print(f"{repetition}  {name:<40} {time.perf_counter() - started:6.2f} s", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
