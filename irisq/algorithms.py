"""The algorithms a training request may ask for, and the hyperparameters each accepts.

Validated here, in the shared contract, so that a bad parameter is a 422 from the API that
names it, not a failed job minutes later in the worker.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

Algorithm = Literal["logistic_regression", "svc", "decision_tree", "random_forest", "knn"]
DEFAULT_ALGORITHM: Algorithm = "logistic_regression"


def _whole_number(value: Any) -> Any:
    """`13.0` is an integer to JSON Schema (and to the OpenAPI document), so it is one here
    too; `13.5`, `"13"` and `true` stay refused by the strict check."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
# A tree depth. The bounds sit inside the annotation, before the validator: on the `Optional`
# field, or after it, they would reach the JSON schema as unknown `ge`/`le` keywords.
Depth = Annotated[int, Field(ge=1, le=100), BeforeValidator(_whole_number)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LogisticRegressionParams(_Params):
    """Multinomial logistic regression on standardised features."""

    C: float = Field(1.0, gt=0, le=1e6, description="Inverse regularisation strength.")
    max_iter: WholeNumber = Field(1000, ge=10, le=100_000, description="Solver iteration cap.")


class SVCParams(_Params):
    """Support vector classifier with calibrated probabilities."""

    C: float = Field(1.0, gt=0, le=1e6, description="Regularisation parameter.")
    kernel: Literal["linear", "rbf", "poly", "sigmoid"] = "rbf"
    gamma: Literal["scale", "auto"] | float = Field(
        "scale",
        description="Kernel coefficient.",
        # The validator below, in the schema: a number must be greater than 0.
        json_schema_extra={
            "anyOf": [
                {"enum": ["scale", "auto"], "type": "string"},
                {"type": "number", "exclusiveMinimum": 0},
            ]
        },
    )

    @field_validator("gamma")
    @classmethod
    def _positive_gamma(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not value > 0:
            raise ValueError("gamma must be 'scale', 'auto' or a number greater than 0")
        return value


class DecisionTreeParams(_Params):
    """A single decision tree."""

    max_depth: Depth | None = Field(None, description="None grows the full tree.")
    min_samples_leaf: WholeNumber = Field(1, ge=1, le=100)
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"


class RandomForestParams(_Params):
    """A random forest of decision trees."""

    n_estimators: WholeNumber = Field(100, ge=1, le=1000)
    max_depth: Depth | None = None
    min_samples_leaf: WholeNumber = Field(1, ge=1, le=100)


class KNNParams(_Params):
    """k-nearest neighbours on standardised features."""

    n_neighbors: WholeNumber = Field(5, ge=1, le=100)
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


def _params_per_algorithm(schema: dict[str, Any]) -> None:
    """Say in the JSON schema which `params` each algorithm takes, as the validator of
    `TrainingRequest.params` enforces it: one branch per algorithm (an absent `algorithm`
    is the default one)."""
    branches: list[dict[str, Any]] = []
    for algorithm, params in PARAMS_BY_ALGORITHM.items():
        branch: dict[str, Any] = {
            "properties": {
                "algorithm": {"const": algorithm},
                "params": params.model_json_schema(),
            }
        }
        if algorithm != DEFAULT_ALGORITHM:
            branch["required"] = ["algorithm"]
        branches.append(branch)
    schema["oneOf"] = branches
    schema["examples"] = [{"algorithm": "logistic_regression", "params": {"C": 1.0}}]


class TrainingRequest(BaseModel):
    """Train a model and offer it to the champion gate."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_params_per_algorithm)

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
