"""The scikit-learn pipeline for each algorithm a training request may name."""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier


def _classifier(algorithm: str, params: dict[str, Any], seed: int) -> Any:
    if algorithm == "logistic_regression":
        return LogisticRegression(C=params["C"], max_iter=params["max_iter"])
    if algorithm == "svc":
        # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its replacement.
        svc = SVC(C=params["C"], kernel=params["kernel"], gamma=params["gamma"], random_state=seed)
        return CalibratedClassifierCV(svc, ensemble=False)
    if algorithm == "decision_tree":
        return DecisionTreeClassifier(random_state=seed, **params)
    if algorithm == "random_forest":
        return RandomForestClassifier(random_state=seed, n_jobs=1, **params)
    if algorithm == "knn":
        # Brute force is exact and instant on 105 training rows, and keeps the saved model
        # free of KD-tree internals that skops would have to be told to trust.
        return KNeighborsClassifier(algorithm="brute", **params)
    raise ValueError(f"unknown algorithm {algorithm!r}")


def build_pipeline(algorithm: str, params: dict[str, Any], seed: int) -> Pipeline:
    """Standardise the four measurements, then classify."""
    return Pipeline(
        [("scale", StandardScaler()), ("classify", _classifier(algorithm, params, seed))]
    )
