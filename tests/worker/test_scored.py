"""A prediction job's result JSON written from arrays reads as the contract's model writes it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from irisq.job_types import PredictionResult
from irisq.schema import SPECIES
from worker.scored import ScoredRows, UnusableModelError
from worker.training import iris_split


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    x_train, _, y_train, _ = iris_split()
    return LogisticRegression(max_iter=500).fit(x_train, y_train)


def _as_pydantic_writes_it(scored: ScoredRows, version: str) -> str:
    """The slow way: a dict per row, validated into the model, dumped by pydantic."""
    probabilities = scored.probabilities.tolist()
    return PredictionResult.model_validate(
        {
            "model_version": version,
            "model_source": "last_known",
            "predictions": [
                {"species": SPECIES[b], "probabilities": dict(zip(SPECIES, p, strict=True))}
                for b, p in zip(scored.best.tolist(), probabilities, strict=True)
            ],
        }
    ).model_dump_json()


def test_the_json_holds_what_the_model_would_write(model: LogisticRegression) -> None:
    generator = np.random.default_rng(3)
    # Far-off rows too: probabilities of 0.0, 1.0 and ~1e-6, which floats spell in exponents.
    features = generator.uniform([0, 0, 0, 0], [30, 30, 30, 30], (2_000, 4))
    scored = ScoredRows.of(model, features)

    fast = scored.result_json("12", "last_known")
    slow = _as_pydantic_writes_it(scored, "12")

    assert json.loads(fast) == json.loads(slow)
    assert PredictionResult.model_validate_json(fast) == PredictionResult.model_validate_json(slow)
    assert list(json.loads(fast)) == list(PredictionResult.model_fields)  # no field left out
    assert [p["species"] for p in json.loads(fast)["predictions"]] == model.predict(
        features
    ).tolist()
    assert {0.0, 1.0} & set(scored.probabilities.ravel().tolist())  # the edge cases were there


def test_a_version_is_written_as_a_json_string_whatever_it_holds(
    model: LogisticRegression,
) -> None:
    scored = ScoredRows.of(model, np.array([[5.1, 3.5, 1.4, 0.2]]))
    result = PredictionResult.model_validate_json(scored.result_json('7"},"x":"', "registry"))
    assert result.model_version == '7"},"x":"'


def test_species_are_counted_from_the_arrays(model: LogisticRegression) -> None:
    _, x_test, _, _ = iris_split()
    scored = ScoredRows.of(model, x_test)
    predicted = model.predict(x_test).tolist()
    assert scored.species_counts() == {s: predicted.count(s) for s in SPECIES if s in predicted}
    assert len(scored.rows(2, 9)) == 7


class _Answers:
    """A model file's estimator as the registry could hand one over: whatever it answers."""

    def __init__(self, classes: list[Any], probabilities: list[list[float]]) -> None:
        self.classes_ = np.array(classes)
        self.answer = np.array(probabilities)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.answer


def test_columns_follow_the_models_classes_whatever_their_order() -> None:
    estimator = _Answers(["virginica", "setosa", "versicolor"], [[0.7, 0.1, 0.2]])
    scored = ScoredRows.of(estimator, np.zeros((1, 4)))
    assert scored.probabilities.tolist() == [[0.1, 0.2, 0.7]]
    assert json.loads(scored.result_json("1", "registry"))["predictions"][0]["species"] == (
        "virginica"
    )


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (_Answers(["cat", "dog", "setosa"], [[0.2, 0.3, 0.5]]), r"predicts \[cat, dog, setosa\]"),
        (_Answers([*SPECIES, "rose"], [[0.1, 0.2, 0.3, 0.4]]), "answered"),
        (_Answers(list(SPECIES), [[0.2, float("nan"), 0.8]]), "not numbers"),
        (_Answers(list(SPECIES), [[0.2, float("inf"), 0.8]]), "not numbers"),
        (_Answers(list(SPECIES), [[0.2, 0.8, 0.0], [0.1, 0.1, 0.8]]), "for 1 rows"),
    ],
    ids=["other-classes", "four-classes", "nan", "infinite", "more-rows-than-asked"],
)
def test_a_model_answering_anything_else_is_refused(estimator: _Answers, message: str) -> None:
    with pytest.raises(UnusableModelError, match=message):
        ScoredRows.of(estimator, np.zeros((1, 4)))
