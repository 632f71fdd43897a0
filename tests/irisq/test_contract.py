"""The shared contract: rows, model references, training parameters, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from irisq.algorithms import TrainingRequest, resolve_params
from irisq.schema import FeatureRow, PredictionRequest, is_version
from irisq.settings import Settings
from tests.support.stack import SETOSA


def test_integers_are_accepted_as_centimetres() -> None:
    row = FeatureRow.model_validate({**SETOSA, "sepal_length": 5})

    assert row.as_list() == [5.0, 3.5, 1.4, 0.2]


@pytest.mark.parametrize(("given", "expected"), [("champion", "champion"), ("3", "3"), (12, "12")])
def test_model_references(given: object, expected: str) -> None:
    request = PredictionRequest.model_validate({"rows": [SETOSA], "model": given})

    assert request.model == expected


@pytest.mark.parametrize("given", ["", "03", "-1", "v2", 0, -3, True, 1.5, "champion "])
def test_bad_model_references_are_refused(given: object) -> None:
    with pytest.raises(ValidationError, match='must be "champion"'):
        PredictionRequest.model_validate({"rows": [SETOSA], "model": given})


def test_version_references_are_told_from_the_champion() -> None:
    assert is_version("7")
    assert not is_version("champion")


def test_training_defaults_are_filled_in() -> None:
    request = TrainingRequest.model_validate({"algorithm": "random_forest"})

    assert request.params == {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1}


def test_svc_gamma_takes_a_word_or_a_positive_number() -> None:
    assert resolve_params("svc", {"gamma": 0.5})["gamma"] == 0.5
    assert resolve_params("svc", {"gamma": "auto"})["gamma"] == "auto"
    with pytest.raises(ValidationError):
        resolve_params("svc", {"gamma": "sometimes"})


def test_production_refuses_open_cors() -> None:
    with pytest.raises(ValidationError, match="IRISQ_CORS_ORIGINS"):
        Settings(env="production", cors_origins=["*"])


def test_a_column_in_millimetres_is_not_taken_for_centimetres() -> None:
    from irisq.csv_rules import CsvRejectedError, parse_header

    columns = ["sepal length (mm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    with pytest.raises(CsvRejectedError, match="missing required column"):
        parse_header(columns)
