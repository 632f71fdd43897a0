"""The algorithms a training request may ask for, and the hyperparameters each accepts.

Validated here, in the shared contract, so that a bad parameter is a 422 from the API that
names it, not a failed job minutes later in the worker.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

Algorithm = Literal["logistic_regression", "svc", "decision_tree", "random_forest", "knn"]
DEFAULT_ALGORITHM: Algorithm = "logistic_regression"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LogisticRegressionParams(_Params):
    """Multinomial logistic regression on standardised features."""

    C: float = Field(1.0, gt=0, le=1e6, description="Inverse regularisation strength.")
    max_iter: int = Field(1000, ge=10, le=100_000, description="Solver iteration cap.")


class SVCParams(_Params):
    """Support vector classifier with calibrated probabilities."""

    C: float = Field(1.0, gt=0, le=1e6, description="Regularisation parameter.")
    kernel: Literal["linear", "rbf", "poly", "sigmoid"] = "rbf"
    gamma: Literal["scale", "auto"] | float = Field("scale", description="Kernel coefficient.")

    @field_validator("gamma")
    @classmethod
    def _positive_gamma(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not value > 0:
            raise ValueError("gamma must be 'scale', 'auto' or a number greater than 0")
        return value


class DecisionTreeParams(_Params):
    """A single decision tree."""

    max_depth: int | None = Field(None, ge=1, le=100, description="None grows the full tree.")
    min_samples_leaf: int = Field(1, ge=1, le=100)
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"


class RandomForestParams(_Params):
    """A random forest of decision trees."""

    n_estimators: int = Field(100, ge=1, le=1000)
    max_depth: int | None = Field(None, ge=1, le=100)
    min_samples_leaf: int = Field(1, ge=1, le=100)


class KNNParams(_Params):
    """k-nearest neighbours on standardised features."""

    n_neighbors: int = Field(5, ge=1, le=100)
    weights: Literal["uniform", "distance"] = "uniform"


PARAMS_BY_ALGORITHM: dict[str, type[_Params]] = {
    "logistic_regression": LogisticRegressionParams,
    "svc": SVCParams,
    "decision_tree": DecisionTreeParams,
    "random_forest": RandomForestParams,
    "knn": KNNParams,
}


def resolve_params(algorithm: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate `params` for `algorithm` and fill in the defaults."""
    return PARAMS_BY_ALGORITHM[algorithm].model_validate(params).model_dump()


class TrainingRequest(BaseModel):
    """Train a model and offer it to the champion gate."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"algorithm": "logistic_regression", "params": {"C": 1.0}}]
        },
    )

    algorithm: Algorithm = DEFAULT_ALGORITHM
    params: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # so omitted params come back filled with the defaults
        description="Hyperparameters of the algorithm; unknown names are refused.",
    )

    @field_validator("params")
    @classmethod
    def _params_fit_algorithm(cls, params: dict[str, Any], info: Any) -> dict[str, Any]:
        algorithm = info.data.get("algorithm")
        if algorithm is None:  # the algorithm itself was invalid and is reported on its own
            return params
        try:
            return resolve_params(algorithm, params)
        except ValidationError as exc:
            problems = "; ".join(
                f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise PydanticCustomError(
                "invalid_params",
                "{problems} (for algorithm {algorithm})",
                {"problems": problems, "algorithm": algorithm},
            ) from None
