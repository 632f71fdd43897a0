"""What MLflow keeps of a training, for whoever traces a prediction back: the data the run
was fitted and judged on (datasets with digests), the model with a signature that says what
its pyfunc returns and an input example, the gate's decision as the version's description,
and a signature of irisq's own on the stored file (worker.trust)."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from irisq.schema import FEATURES
from worker.registry import Registry
from worker.trust import TRUSTED_TYPES, UntrustedModelError, load_estimator

# Where the flowers come from (scikit-learn's copy of Fisher's data), as the runs' datasets say.
IRIS_SOURCE = "https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_iris.html"


def decision(promoted: bool, reason: str, algorithm: str, accuracy: float) -> str:
    """The version's description in the registry: what the gate decided, and why."""
    verdict = "Promoted to champion by the quality gate" if promoted else "Not promoted"
    return f"{verdict}: {reason}. {algorithm}, test accuracy {accuracy:.4f}."


def log_data(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> None:
    """The flowers the run was fitted on and judged on, as MLflow datasets (each with its
    digest, so two runs on the same data say so)."""
    for context, features, labels in (
        ("training", x_train, y_train),
        ("evaluation", x_test, y_test),
    ):
        dataset = from_pandas(
            _frame(features).assign(species=labels),
            source=IRIS_SOURCE,
            targets="species",
            name=f"iris-{context}",
        )
        mlflow.log_input(dataset, context=context)


def log_model(pipeline: Any, x_test: np.ndarray) -> Any:
    """Log the pipeline with its signature and an input example (registered separately).
    The signature's output is what the pyfunc flavour returns: a species name a row."""
    # The pipeline is fitted on bare arrays (the hot path scores numpy); MLflow checks the
    # named input example against it and scikit-learn warns about the names.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X has feature names", category=UserWarning)
        return _log_model(pipeline, x_test)


def _log_model(pipeline: Any, x_test: np.ndarray) -> Any:
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=mlflow.models.infer_signature(
            _frame(x_test[:5]), pd.Series(pipeline.predict(x_test[:5]), name="species")
        ),
        input_example=_frame(x_test[:1]),
        # Naming the requirements skips MLflow's import-capturing subprocess (seconds).
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        skops_trusted_types=TRUSTED_TYPES,
    )


class _NoServingValidation(logging.Filter):
    """MLflow checks an input example by loading the model back through its own loader,
    which irisq refuses (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false), then warns that it could
    not: a misleading line in every training's log. `sign_stored_model` checks the stored file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to validate serving input example")


logging.getLogger("mlflow.models.model").addFilter(_NoServingValidation())


def sign_stored_model(
    registry: Registry, run_id: str, model_uri: str, pipeline: Any, x_test: np.ndarray
) -> str:
    """Sign the model file as the store holds it (read back: what workers will download),
    once it is known to be the model just trained: anyone may write to the artifact store,
    so the file is read (skops, trusted types only: no code runs) and must score the test
    flowers exactly as the fitted pipeline does."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder))
        stored = load_estimator(local)
        if not np.array_equal(stored.predict_proba(x_test), pipeline.predict_proba(x_test)):
            raise UntrustedModelError(
                "the model file in the artifact store is not the one just trained; "
                "it was not signed or registered"
            )
        return registry.signer.sign(run_id, local)


def _frame(rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FEATURES))
