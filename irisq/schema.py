"""The feature schema, the species, and the request payloads every service agrees on."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

SPECIES: Final = ("setosa", "versicolor", "virginica")
FEATURES: Final = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_ROWS: Final = 10_000
# Real Iris measurements stay under 8 cm; anything past 100 cm is a unit or typing mistake.
MAX_CM: Final = 100.0
CHAMPION: Final = "champion"
# The MLflow release whose scoring protocol `/invocations` speaks and whose `mlflow` the
# workers run (a test checks that they agree). `/version` answers it, as MLflow's server does.
MLFLOW_PROTOCOL_VERSION: Final = "3.17.2"

_Centimetres = Annotated[
    float,
    Field(
        gt=0,
        le=MAX_CM,
        allow_inf_nan=False,
        strict=True,
        description=f"Length in centimetres, greater than 0 and at most {MAX_CM:g}.",
    ),
]


class FeatureRow(BaseModel):
    """One flower: four measurements in centimetres."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
            ]
        },
    )

    sepal_length: _Centimetres
    sepal_width: _Centimetres
    petal_length: _Centimetres
    petal_width: _Centimetres

    def as_list(self) -> list[float]:
        """The measurements in `FEATURES` order, as the model expects them."""
        return [self.sepal_length, self.sepal_width, self.petal_length, self.petal_width]


# fullmatch, never `$`: it lets a trailing newline through ("3\n").
_VERSION = re.compile(r"[1-9][0-9]{0,8}")


def _model_reference(value: Any) -> str:
    """Accept `"champion"`, `"3"` or `3` (and `3.0`, which JSON Schema counts as an integer)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    if isinstance(value, str) and (value == CHAMPION or _VERSION.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "model_reference",
        'must be "champion" or a registered version number such as "3"',
    )


def _model_reference_schema(schema: dict[str, Any]) -> None:
    """What `_model_reference` accepts: the word, or a version as a string or a number."""
    schema.pop("type", None)
    schema["anyOf"] = [
        {"type": "string", "pattern": rf"^({CHAMPION}|[1-9][0-9]{{0,8}})$"},
        {"type": "integer", "minimum": 1, "maximum": 999_999_999},
    ]


ModelReference = Annotated[
    str,
    PlainValidator(_model_reference, json_schema_input_type=str),
    Field(
        description='`"champion"` or a registered version number of the `iris` model.',
        json_schema_extra=_model_reference_schema,
    ),
]


def is_version(reference: str) -> bool:
    """True when a model reference names a registered version rather than the champion."""
    return bool(_VERSION.fullmatch(reference))


class Aliases(NamedTuple):
    """What the registry says of the registered model in one answer."""

    champion: str | None  # the versions the two aliases point at, None where unset
    challenger: str | None
    # When the registered model was made (ms), None when unknown or there is none: a model
    # deleted and made again (or a new registry) numbers its versions from 1 again.
    created: int | None = None


class PredictionRequest(BaseModel):
    """Rows to score, and which model should score them."""

    model_config = ConfigDict(extra="forbid")

    rows: list[FeatureRow] = Field(min_length=1, max_length=MAX_ROWS)
    model: ModelReference = CHAMPION
