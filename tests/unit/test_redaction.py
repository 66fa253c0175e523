"""Credentials never leave lakescore in text it writes or prints."""

from __future__ import annotations

import logging
import sys
import traceback

import pytest

from lakescore.errors import LakescoreError
from lakescore.redaction import ScrubbingFormatter, scrub, scrub_causes, scrub_every_log_record


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        ("http://alice:s3cr3t@mlflow.internal:5000/api", ["s3cr3t"]),
        ("MLflow registry https://bob:tok-123@host could not be reached", ["tok-123"]),
        ("abfss://c@acct.dfs.core.windows.net/x?sig=AbC%2Fdef&sv=2021", ["AbC%2Fdef"]),
        ("postgresql://u:pw@db/mlflow?password=other", ["pw@", "other"]),
        ("token=ghp_abcdef and api_key=XYZ", ["ghp_abcdef", "XYZ"]),
        ("https://user:p@ss@host/api and http://u:v@w@h2:5000", ["p@ss", "ss@", "v@w"]),
        ("https://dapi0123abc@mlflow.example.com/api", ["dapi0123abc"]),
        ("https://:dapi0123abc@mlflow.example.com/api", ["dapi0123abc"]),  # requests takes it
        ("refresh_token=r1 auth_token=a1 PRIVATE_TOKEN=p1", ["r1", "a1", "p1"]),
        ("aws_secret_access_key=AK1 fs.s3a.secret.key=SK1", ["AK1", "SK1"]),
        ("AccountName=acct;AccountKey=Zm9v==;EndpointSuffix=core", ["Zm9v=="]),
        ("spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net=K2", ["K2"]),
        (
            "SharedAccessKeyName=n;SharedAccessKey=K3 sessionToken=T3 x-api-key=X3",
            ["K3", "T3", "X3"],
        ),
    ],
)
def test_scrub_masks_credentials(text: str, secrets: list[str]) -> None:
    """Every credential in the text is masked, not only the first."""
    cleaned = scrub(text)
    for secret in secrets:
        assert secret not in cleaned
    assert "***" in cleaned


def test_scrub_leaves_ordinary_paths_alone() -> None:
    text = "Input s3://bucket/raw/meters does not exist; model models:/meter_risk@champion"
    assert scrub(text) == text
    storage = "abfss://container@account.dfs.core.windows.net/raw and https://host/a@b"
    assert scrub(storage) == storage  # a container, and an @ in a path, are no secrets
    partitions = "input: /lake/raw/sig=2026/my_token=7 (s3a://b/raw/sas=eu/x.parquet)"
    assert scrub(partitions) == partitions  # partition folders, and rows' lineage
    settings = "max_tokens=4096 tokenizer=bpe primaryKey=id design=x"
    assert scrub(settings) == settings


class _OwnStr(Exception):
    """An exception whose text is not its arguments (as a Java error's is not)."""

    def __str__(self) -> str:
        return "failed at http://alice:s3cr3t@host:5000"


def _traceback_of(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def test_the_exceptions_an_error_was_raised_from_lose_their_credentials() -> None:
    """A notebook prints the whole chain: MLflow's error below lakescore's quotes the URI."""
    inner = ValueError("API request to http://alice:s3cr3t@host:5000/api failed")
    middle = RuntimeError("retrying https://bob:tok-123@host")
    middle.__cause__ = inner
    error = LakescoreError("MLflow registry http://***@host:5000 could not be reached")
    error.__cause__ = middle

    scrub_causes(error)

    shown = _traceback_of(error)
    assert "s3cr3t" not in shown and "tok-123" not in shown
    assert "API request to http://***@host:5000/api failed" in shown  # kept, scrubbed


def test_a_cause_whose_text_cannot_be_scrubbed_is_left_out_with_a_note() -> None:
    error = LakescoreError("Run r failed")
    try:
        try:
            raise _OwnStr()
        except _OwnStr as own:
            raise error from own
    except LakescoreError:
        pass

    scrub_causes(error)

    shown = _traceback_of(error)
    assert "s3cr3t" not in shown and "_OwnStr" not in shown.split("LakescoreError")[0]
    assert "raised from a _OwnStr left out here" in shown


def test_a_cause_without_credentials_is_kept_as_it_is() -> None:
    error = LakescoreError("Run r failed")
    error.__cause__ = ValueError("file:/data/x.parquet is not a Parquet file")

    scrub_causes(error)

    assert "file:/data/x.parquet is not a Parquet file" in _traceback_of(error)


def test_logged_tracebacks_lose_their_credentials() -> None:
    formatter = ScrubbingFormatter("%(message)s")
    try:
        raise ValueError("connecting to http://alice:s3cr3t@host:5000")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.WARNING, __file__, 1, "token=%s", ("abc",), sys.exc_info()
        )

    shown = formatter.format(record)

    assert "s3cr3t" not in shown and "abc" not in shown
    assert "Traceback" in shown and "token=***" in shown


def test_mlflow_log_lines_lose_their_credentials_once_the_command_line_scrubs_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """MLflow prints through a handler of its own, which the command line's scrubbing formatter
    never saw: a warning quoting the tracking URI showed its password."""
    import mlflow  # noqa: F401  (sets up MLflow's own handler)

    mlflow_log = logging.getLogger("mlflow.tracking")
    original = logging.getLogRecordFactory()  # the command line's, if a test ran it here
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        mlflow_log.error("before: https://carol:shown@host/")
        scrub_every_log_record()
        mlflow_log.error("registry at %s is slow", "https://alice:s3cr3t@host/")
        try:
            raise ValueError("token=abc failed")
        except ValueError:
            mlflow_log.exception("lost https://bob:hunter2@host")
        # Wrong arguments are logging's to report when the record is printed, not a crash here.
        make = logging.getLogRecordFactory()
        record = make("mlflow", logging.ERROR, __file__, 1, "%s %s", ("too few",), None)
        assert record.args == ("too few",)
    finally:
        logging.setLogRecordFactory(original)

    shown = capsys.readouterr().err
    assert "registry at https://***@host/ is slow" in shown
    assert "lost https://***@host" in shown and "token=***" in shown and "ValueError" in shown
    for secret in ("s3cr3t", "hunter2", "abc"):
        assert secret not in shown
    assert "https://carol:shown@host/" in shown  # what MLflow's handler printed unscrubbed
