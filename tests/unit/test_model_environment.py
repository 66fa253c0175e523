"""The driver's check of a model's logged requirements against this Python environment."""

from __future__ import annotations

import platform
from pathlib import Path

import mlflow
import pandas as pd
import sklearn
import yaml
from sklearn.linear_model import LogisticRegression

from lakescore.model_environment import environment_mismatches

FEATURES = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def _save(path: Path, requirements: list[str]) -> str:
    model = LogisticRegression().fit(FEATURES, [0, 0, 1, 1])
    mlflow.sklearn.save_model(model, str(path), pip_requirements=requirements)
    return str(path)


def test_a_model_logged_with_what_is_installed_has_no_mismatch(tmp_path: Path) -> None:
    local = _save(tmp_path / "m", [f"scikit-learn=={sklearn.__version__}", "pandas"])
    assert environment_mismatches(local) == []


def test_an_other_version_or_a_missing_package_or_python_is_named(tmp_path: Path) -> None:
    local = _save(
        tmp_path / "m",
        # dataclasses has no __version__ (MLflow's check raises), the feature-lookup client is
        # one MLflow leaves out: neither is reported, nor stops the check.
        [
            "scikit-learn==0.20.0",
            "dataclasses",
            "databricks-feature-lookup==1.0",
            "lakescore-absent-package==1.0",
        ],
    )
    mlmodel = Path(local, "MLmodel")
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["python_function"]["python_version"] = "3.8.18"
    mlmodel.write_text(yaml.safe_dump(meta))

    found = environment_mismatches(local)

    assert found[0] == (
        f"scikit-learn (current: {sklearn.__version__}, required: scikit-learn==0.20.0)"
    )
    assert found[1].startswith("lakescore-absent-package (current: uninstalled")
    assert found[2].startswith(f"python (current: {platform.python_version()}")
    assert "saved with: 3.8.18" in found[2]
    assert len(found) == 3
