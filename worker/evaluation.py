"""Metrics of a fitted model on the test split, and logging them to the active MLflow run."""

from __future__ import annotations

from typing import Any

import matplotlib
import mlflow
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from irisq.schema import SPECIES


def evaluate(estimator: Any, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision and recall, and the confusion matrix."""
    predicted = estimator.predict(x_test)
    labels = list(SPECIES)
    precision, recall, _, _ = precision_recall_fscore_support(
        y_test, predicted, labels=labels, zero_division=0
    )
    metrics: dict[str, float] = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro", zero_division=0)),
    }
    for species, p, r in zip(labels, precision, recall, strict=True):
        metrics[f"precision_{species}"] = float(p)
        metrics[f"recall_{species}"] = float(r)
    matrix = confusion_matrix(y_test, predicted, labels=labels)
    return {
        "metrics": metrics,
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
    }


def log_evaluation(evaluation: dict[str, Any]) -> None:
    """Log the metrics, and the confusion matrix as an image and as JSON."""
    mlflow.log_metrics(evaluation["metrics"])
    mlflow.log_dict(evaluation["confusion_matrix"], "confusion_matrix.json")
    mlflow.log_figure(_confusion_figure(evaluation["confusion_matrix"]), "confusion_matrix.png")


matplotlib.use("Agg")  # workers have no display
# Imported with the module, so a Celery worker pays for pyplot once, before it forks its pool.
from matplotlib import pyplot as plt  # noqa: E402


def _confusion_figure(confusion: dict[str, Any]) -> Any:
    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=30)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(j, i, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    plt.close(figure)
    return figure
