"""Command-line arguments the README promises, checked without a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from lakescore import __version__
from lakescore.cli import main
from lakescore.errors import UsageError
from lakescore.runner import check_run_id


def test_version_prints_the_package_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"lakescore {__version__}"


def test_a_run_id_of_128_characters_is_taken_and_one_longer_is_refused() -> None:
    longest = "r" * 128
    assert check_run_id(longest) == longest
    with pytest.raises(UsageError, match="at most 128"):
        check_run_id(longest + "r")


def test_a_run_id_ending_in_a_newline_is_refused() -> None:
    """`$` matched before a final newline: `LAKESCORE_RUN_ID` from a YAML block scalar was a
    run id no rerun of `nightly` replaced."""
    with pytest.raises(UsageError, match="must start with a letter or digit"):
        check_run_id("nightly\n")


def test_a_demo_folder_that_cannot_be_made_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    """It was "unexpected FileExistsError", exit 1."""
    taken = tmp_path / "lakehouse"
    taken.write_text("")
    assert main(["demo", "--dir", str(taken)]) == 2
    assert f"--dir {taken}: cannot make the demo's folder there" in capsys.readouterr().err


def test_a_run_id_whose_staging_folder_name_is_too_long_is_refused() -> None:
    """Each `:` is written `%3A` in the staging folder's name, which may hold 255 characters."""
    too_long = "r" + ":" * 127  # 1 + 3 * 127 = 382 characters as a folder name
    with pytest.raises(UsageError, match="too long for a file system"):
        check_run_id(too_long)
    longest = "r" * 2 + ":" * 84  # 2 + 3 * 84 = 254
    assert check_run_id(longest) == longest


def test_an_abbreviated_option_is_refused(capsys: Any, tmp_path: Path) -> None:
    """`--js` was taken as `--json`, but a usage error then printed no JSON: spelled out only."""
    assert main(["runs", "list", str(tmp_path / "d.yaml"), "--js"]) == 2
    assert "unrecognized arguments: --js" in capsys.readouterr().err


@pytest.mark.parametrize("model_exists", [True, False])
def test_a_closed_standard_output_ends_with_one_sentence(
    tmp_path: Path, model_exists: bool
) -> None:
    """`lakescore deployment show d.yaml --json | head -1`: the reader goes away, before the
    output (buffered: written at exit, outside any handler) or an error's JSON is written."""
    model = tmp_path / "model"
    if model_exists:
        features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        mlflow.sklearn.save_model(
            LogisticRegression().fit(features, [0, 0, 1, 1]),
            str(model),
            signature=infer_signature(features, np.array([0, 1])),
        )
    deployment = tmp_path / "d.yaml"
    deployment.write_text(
        f"name: d\nmodel: {{uri: {model}}}\ninput: {{format: parquet, path: in}}\n"
        "output: {path: out}\nquarantine: {path: q}\nruns: {path: runs}\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    read, write = os.pipe()
    os.close(read)  # the reader has gone before anything is written
    try:
        ended = subprocess.run(
            [
                sys.executable,
                "-c",
                "from lakescore.cli import main; raise SystemExit(main())",
                "deployment",
                "show",
                str(deployment),
                "--json",
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=environment,
        )
    finally:
        os.close(write)
    closed = "standard output was closed before all was written to it"
    [said] = ended.stderr.strip().splitlines()
    if model_exists:
        assert (ended.returncode, said) == (1, f"lakescore: error: {closed}")
    else:
        assert ended.returncode == 2
        assert f"Model path {model} is not an MLflow model" in said
        assert said.endswith(f"; {closed}")
