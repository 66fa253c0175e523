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
