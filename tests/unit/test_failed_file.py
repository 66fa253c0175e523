"""Which input file a Spark read error is about, from the paths the run listed."""

from __future__ import annotations

from lakescore.io import failed_file_in

FILES = [
    "file:/data/raw/000000_0",
    "file:/data/raw/000000_0_copy_1",
    "file:/data/raw/my meters/part-1.parquet",
]


def test_a_name_that_extends_another_blames_the_longer_one() -> None:
    """Hive's `000000_0_copy_1` contains `000000_0`: the error about the copy must not blame
    (and drop) the good file."""
    error = "[FAILED_READ_FILE] Error while reading file file:/data/raw/000000_0_copy_1."
    assert failed_file_in(error, FILES) == "file:/data/raw/000000_0_copy_1"
    error = "[FAILED_READ_FILE] Error while reading file file:/data/raw/000000_0."
    assert failed_file_in(error, FILES) == "file:/data/raw/000000_0"


def test_a_file_named_as_a_uri_is_found() -> None:
    error = (
        "[FAILED_READ_FILE] Error while reading file file:///data/raw/my%20meters/part-1.parquet."
    )
    assert failed_file_in(error, FILES) == "file:/data/raw/my meters/part-1.parquet"


def test_an_error_naming_no_listed_file_blames_none() -> None:
    assert failed_file_in("Java heap space", FILES) is None


def test_a_name_spark_encodes_only_in_part_is_found() -> None:
    """Spark names a file by its URI: a space becomes %20 while `=`, `+` and non-ASCII letters
    stay as they are, so neither the listed path nor quote() of it appears in the error."""
    files = ["file:/data/my raw/day=1/b+c ü.parquet", "file:/data/my raw/day=1/other.parquet"]
    error = "Error while reading file file:///data/my%20raw/day=1/b+c%20ü.parquet."
    assert failed_file_in(error, files) == files[0]
