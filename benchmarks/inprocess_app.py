"""The no-queue ceiling for `benchmarks.online`: a minimal FastAPI app scoring in-process.

IRISQ_BENCH_MODEL=<local model dir> uvicorn benchmarks.inprocess_app:app
"""

from __future__ import annotations

import os

import mlflow.sklearn
import numpy as np
from fastapi import FastAPI

from irisq.schema import FeatureRow

app = FastAPI()
model = mlflow.sklearn.load_model(os.environ["IRISQ_BENCH_MODEL"])
classes = [str(c) for c in model.classes_]


@app.post("/predict")
def predict(row: FeatureRow) -> dict[str, object]:
    probabilities = model.predict_proba(np.asarray([row.as_list()]))[0]
    best = int(probabilities.argmax())
    return {
        "species": classes[best],
        "probabilities": dict(zip(classes, probabilities.round(6).tolist(), strict=True)),
    }
