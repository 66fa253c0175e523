"""Sensitive data: redacted quarantine columns, and credentials kept out of every output."""

from __future__ import annotations

import hashlib
import json
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable

from lakescore.cli import main
from lakescore.config import load_deployment


def read(path: str) -> Any:
    return DeltaTable(path).to_pyarrow_table().to_pandas()


def test_redacted_quarantine_columns_hold_a_stable_hash(lakehouse: Any, capsys: Any) -> None:
    deployment_file = lakehouse(
        rows=300,
        files=2,
        quarantine={"path": "scored/quarantine", "redact": ["meter_id", "region"]},
    )
    deployment = load_deployment(deployment_file)
    assert main(["score", str(deployment_file), "--run-id", "one"]) == 0
    assert main(["score", str(deployment_file), "--run-id", "two"]) == 0
    capsys.readouterr()

    quarantine = read(deployment.quarantine.path)
    assert len(quarantine) > 0
    assert quarantine["meter_id"].str.fullmatch(r"sha256:[0-9a-f]{64}").all()
    assert quarantine["region"].str.startswith("sha256:").all()
    one, two = (set(quarantine.loc[quarantine["_run_id"] == r, "meter_id"]) for r in ("one", "two"))
    assert one == two  # the same row hashes the same way: duplicates stay findable
    predictions = read(deployment.output.path)
    assert predictions["meter_id"].str.startswith("M").all()
    # Each quarantined row's own key, hashed: not a constant, nor a hash of something else.
    scored = set(predictions.loc[predictions["_run_id"] == "one", "meter_id"])
    kept_out = set(pd.read_parquet(deployment.input.path)["meter_id"]) - scored
    assert one == {"sha256:" + hashlib.sha256(key.encode()).hexdigest() for key in kept_out}


def test_a_lineage_column_named_for_redaction_is_refused(lakehouse: Any, capsys: Any) -> None:
    """`_source_file` is lakescore's, not the input's: it was accepted and then left in clear."""
    deployment_file = lakehouse(
        rows=20, files=1, quarantine={"path": "scored/quarantine", "redact": ["_source_file"]}
    )
    assert main(["score", str(deployment_file)]) == 2
    err = capsys.readouterr().err
    assert "quarantine.redact names _source_file, which the input lacks" in err
    assert not Path(load_deployment(deployment_file).quarantine.path).exists()


def unreachable_registry_with_credentials(lakehouse: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment whose tracking URI holds a password (`s3cr3t`) and answers nothing, at once."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    deployment_file: Path = lakehouse(rows=20, files=1)
    data = yaml.safe_load(deployment_file.read_text())
    data["model"]["tracking_uri"] = "http://alice:s3cr3t@127.0.0.1:9"
    deployment_file.write_text(yaml.safe_dump(data))
    return deployment_file


def test_credentials_in_the_tracking_uri_never_appear(
    lakehouse: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_file = unreachable_registry_with_credentials(lakehouse, monkeypatch)
    deployment = load_deployment(deployment_file)

    code = main(["score", str(deployment_file), "--run-id", "creds", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert "s3cr3t" not in captured.err + captured.out
    printed = json.loads(captured.out)["error"]
    assert "could not be reached" in printed and "***@127.0.0.1:9" in printed  # masked, not cut
    run = read(deployment.runs.path).iloc[0]
    assert "s3cr3t" not in str(run.to_dict()) and "***@127.0.0.1:9" in run["error"]
    history = DeltaTable(deployment.runs.path).history()
    assert "s3cr3t" not in json.dumps(history, default=str)

    assert main(["deployment", "show", str(deployment_file), "--json"]) == 1
    captured = capsys.readouterr()
    assert "s3cr3t" not in captured.err + captured.out
    assert "***@127.0.0.1:9" in captured.err + captured.out

    # Without --json: the error line on stderr masks it, not drops it.
    assert main(["score", str(deployment_file), "--run-id", "creds"]) == 1
    captured = capsys.readouterr()
    assert "s3cr3t" not in captured.err + captured.out
    assert "***@127.0.0.1:9" in captured.err.splitlines()[-1]


def test_a_notebooks_error_does_not_show_the_tracking_uris_credentials(
    spark: Any, lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook shows the exception `score()` raises, and keeps it in its saved output."""
    from lakescore.errors import RegistryUnreachableError
    from lakescore.runner import score

    deployment_file = unreachable_registry_with_credentials(lakehouse, monkeypatch)

    with pytest.raises(RegistryUnreachableError) as raised:
        score(spark, load_deployment(deployment_file), "cell")

    assert "could not be reached" in str(raised.value) and "s3cr3t" not in str(raised.value)
    assert "***@127.0.0.1:9" in str(raised.value)
    # and in the traceback it prints: MLflow's own error, raised from, quotes the URI too
    shown = "".join(traceback.format_exception(raised.value))
    assert "MlflowException" in shown and "s3cr3t" not in shown
