"""Credentials never leave lakescore in text it writes or prints."""

from __future__ import annotations

import pytest

from lakescore.redaction import scrub


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
