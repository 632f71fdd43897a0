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
    RootModel,
    TypeAdapter,
    field_validator,
)

Algorithm = Literal["logistic_regression", "svc", "decision_tree", "random_forest", "knn"]
DEFAULT_ALGORITHM: Algorithm = "logistic_regression"
# What people call each algorithm, in the order the Train page offers them.
ALGORITHM_TITLES: dict[Algorithm, str] = {
    "logistic_regression": "Logistic regression",
    "svc": "Support vector machine",
    "decision_tree": "Decision tree",
    "random_forest": "Random forest",
    "knn": "k-nearest neighbours",
}


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


class _Training(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogisticRegressionTraining(_Training):
    """Train a logistic regression (the default when `algorithm` is left out)."""

    algorithm: Literal["logistic_regression"] = "logistic_regression"
    params: LogisticRegressionParams = Field(default_factory=LogisticRegressionParams)


class SVCTraining(_Training):
    """Train a support vector classifier."""

    algorithm: Literal["svc"]
    params: SVCParams = Field(default_factory=SVCParams)


class DecisionTreeTraining(_Training):
    """Train a decision tree."""

    algorithm: Literal["decision_tree"]
    params: DecisionTreeParams = Field(default_factory=DecisionTreeParams)


class RandomForestTraining(_Training):
    """Train a random forest."""

    algorithm: Literal["random_forest"]
    params: RandomForestParams = Field(default_factory=RandomForestParams)


class KNNTraining(_Training):
    """Train a k-nearest-neighbours classifier."""

    algorithm: Literal["knn"]
    params: KNNParams = Field(default_factory=KNNParams)


def _default_algorithm(value: Any) -> Any:
    """A request without `algorithm` trains the default one (the tag is then filled in)."""
    if isinstance(value, dict) and "algorithm" not in value:
        return {**value, "algorithm": DEFAULT_ALGORITHM}
    return value


# An algorithm and its hyperparameters, told apart by `algorithm`: a training request, what a
# training job's result and a registered version say was trained.
Training = Annotated[
    LogisticRegressionTraining
    | SVCTraining
    | DecisionTreeTraining
    | RandomForestTraining
    | KNNTraining,
    Field(discriminator="algorithm"),
]


class TrainingRequest(RootModel[Annotated[Training, BeforeValidator(_default_algorithm)]]):
    """Train a model and offer it to the champion gate: `algorithm` (default
    `logistic_regression`) and its `params`; unknown names are refused."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"algorithm": "svc", "params": {"C": 1.0}}]}
    )

    @property
    def algorithm(self) -> str:
        return self.root.algorithm

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters with every default filled in (as the worker receives them)."""
        return self.root.params.model_dump()


TRAINING_ADAPTER: TypeAdapter[Training] = TypeAdapter(Training)


def training_from(algorithm: str, params: dict[str, Any]) -> Training:
    """The typed training of a stored (algorithm, params) pair."""
    return TRAINING_ADAPTER.validate_python({"algorithm": algorithm, "params": params})
