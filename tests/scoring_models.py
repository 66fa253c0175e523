"""Small pyfunc models for the tests. Logged with `code_paths` so executors import this file
from the model itself, as a user's custom model code would travel."""

from __future__ import annotations

import os
from typing import Any

import mlflow.pyfunc
import pandas as pd


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class CountingModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Doubles kwh_7d, and logs each load and each batch (pid, rows) to a file."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def load_context(self, context: Any) -> None:
        _append(self.log_path, f"load {os.getpid()}")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        _append(self.log_path, f"batch {os.getpid()} {len(model_input)}")
        return model_input["kwh_7d"].astype("float64") * 2.0


class BrokenModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Raises on every batch."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        raise ValueError("the model cannot score this batch")


class ShortModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Returns one prediction too few."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        return model_input["kwh_7d"].astype("float64").iloc[1:]


class PickyModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Raises for any batch holding a row with temp_c above 20; logs each call's size."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        _append(self.log_path, f"call {len(model_input)}")
        hot = model_input["temp_c"] > 20
        if hot.any():
            raise ValueError(f"cannot score temp_c {model_input['temp_c'][hot].iloc[0]:.2f}")
        return model_input["kwh_7d"].astype("float64")


class GappyModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Outputs `risk` (NaN where temp_c is above 20) and `note` (None unless temp_c is below 0)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        temp = model_input["temp_c"]
        risk = (model_input["kwh_7d"].astype("float64") * 2.0).where(temp <= 20)
        note = pd.Series("frost", index=model_input.index, dtype=object).where(temp < 0, None)
        return pd.DataFrame({"risk": risk, "note": note})


class CodePathModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """kwh_7d times FACTOR of the `featlib` module that the model ships in its code_paths;
    logs the Python worker (pid) of each batch to `log_path`."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        import featlib  # type: ignore[import-not-found]

        _append(self.log_path, f"batch {os.getpid()}")
        return model_input["kwh_7d"].astype("float64") * featlib.FACTOR


class EchoModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Returns column `n` as it arrives, and raises, quoting the row, where `n` is 13."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        unlucky = model_input["n"] == 13
        if unlucky.any():
            raise ValueError(f"cannot score {model_input[unlucky].to_dict('records')}")
        return model_input["n"]


def save(path: Any, model: mlflow.pyfunc.PythonModel, signature: Any = None) -> Any:
    """Save `model` at `path` (with `signature`, an mlflow ModelSignature, or none), shipping
    this module as its code, and return the path."""
    mlflow.pyfunc.save_model(
        str(path),
        python_model=model,
        signature=signature,
        code_paths=[__file__],
        pip_requirements=["pandas"],
    )
    return path


def save_echo(path: Any, signature: Any = None) -> Any:
    """Save an EchoModel at `path` (see `save`) and return the path."""
    return save(path, EchoModel(), signature)


class UnloadableModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Saves, but cannot be loaded: as a model needing a package the executors lack."""

    def load_context(self, context: Any) -> None:
        raise ModuleNotFoundError("No module named 'featurestore_client'")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        return model_input["kwh_7d"]


class CrashingModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Ends its Python worker inside predict, raising nothing: as the kernel's out-of-memory
    killer or a native library's crash would."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        os._exit(3)
