"""The demo's model: a gradient-boosting classifier behind a pyfunc with two outputs.

It lives in the package (not in a script) so executors can unpickle it from the shipped model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

FEATURES = ["kwh_7d", "kwh_30d", "peak_ratio", "temp_c"]
TARIFFS = ["standard", "economy7", "smart"]


def encode(frame: pd.DataFrame) -> np.ndarray:
    """Numeric features plus a one-hot tariff, as the classifier was trained."""
    numeric = frame[FEATURES].to_numpy(dtype="float64")
    tariff = np.stack([(frame["tariff"] == t).to_numpy(dtype="float64") for t in TARIFFS], axis=1)
    return np.hstack([numeric, tariff])


class MeterRiskModel(PythonModel):
    """Outputs `risk_score` (probability of a fault) and `high_risk` (score above a threshold)."""

    def __init__(self, classifier: Any, threshold: float = 0.5) -> None:
        self.classifier = classifier
        self.threshold = threshold

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        score = self.classifier.predict_proba(encode(model_input))[:, 1]
        return pd.DataFrame({"risk_score": score, "high_risk": score >= self.threshold})
