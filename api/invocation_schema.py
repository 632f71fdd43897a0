"""The OpenAPI description of an `/invocations` body: each of MLflow's input formats.

What api.invocations reads, as JSON Schema: a cell is a number in (0, 100] or a string
holding one (the rules of batch CSV cells, irisq.csv_rules, which also take an exponent, a
decimal comma or spaces around it: those are left out of the pattern); records may carry
other columns, which are ignored. Every example validates against its schema (a test
checks it), so a client generated from the document can send any of them as it is.
"""

from __future__ import annotations

from typing import Any, Final

from irisq.schema import FEATURES, MAX_CM

# A decimal greater than 0 and at most 100, written as a string: "5.1", "0.2", "100".
MEASUREMENT_STRING: Final = r"^\+?(0*[1-9][0-9]?(\.[0-9]*)?|0*100(\.0*)?|0*\.[0-9]*[1-9][0-9]*)$"

_CELL: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_CM},
        {"type": "string", "pattern": MEASUREMENT_STRING},
    ],
    "description": 'Centimetres: a number, or a string holding one (`"5.1"`).',
}
_ROW_LIST: dict[str, Any] = {
    "type": "array",
    "items": _CELL,
    "minItems": len(FEATURES),
    "maxItems": len(FEATURES),
    "description": f"The four measurements in this order: {', '.join(FEATURES)}.",
}
_RECORD: dict[str, Any] = {
    "type": "object",
    "properties": {feature: _CELL for feature in FEATURES},
    "required": list(FEATURES),
    "description": "A row by column name; other columns are ignored, as MLflow ignores them.",
}
_COLUMNS: dict[str, Any] = {
    "type": "object",
    "properties": {f: {"type": "array", "items": _CELL, "minItems": 1} for f in FEATURES},
    "required": list(FEATURES),
    "description": "Columns of equal length, by name.",
}
_ROWS: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "items": _ROW_LIST, "minItems": 1},
        {"type": "array", "items": _RECORD, "minItems": 1},
        _COLUMNS,
    ]
}
_PARAMS: dict[str, Any] = {
    "type": "object",
    "description": "Inference parameters; irisq's models take none, and ignore these.",
}


def _format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: schema, "params": {"$ref": f"{_REF}InferenceParams"}},
    }


_REF = "#/components/schemas/"


_SPLIT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "columns": {
            "type": "array",
            "items": {"type": "string", "enum": list(FEATURES)},
            "minItems": len(FEATURES),
            "maxItems": len(FEATURES),
            "uniqueItems": True,
            "description": "The order of the values in each row (default: as listed here).",
        },
        "data": {"type": "array", "items": _ROW_LIST, "minItems": 1},
        "index": {
            "type": "array",
            "items": {"type": ["string", "integer"]},
            "description": "Row labels; ignored.",
        },
    },
}
_ROW = [5.1, 3.5, 1.4, 0.2]
EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "dataframe_split": {
        "dataframe_split": {"columns": list(FEATURES), "data": [_ROW, [6.7, 3.0, 5.2, 2.3]]}
    },
    "dataframe_records": {"dataframe_records": [dict(zip(FEATURES, _ROW, strict=True))]},
    "instances": {"instances": [_ROW]},
    "inputs": {"inputs": {feature: [value] for feature, value in zip(FEATURES, _ROW, strict=True)}},
}
# Named in the document's components, so that every scoring route (and a client generated
# from the document) shares one definition of each.
COMPONENTS: Final[dict[str, dict[str, Any]]] = {
    "InferenceParams": _PARAMS,
    "Measurement": _CELL,
    "MeasurementRow": {**_ROW_LIST, "items": {"$ref": f"{_REF}Measurement"}},
    "MeasurementRecord": {
        **_RECORD,
        "properties": {feature: {"$ref": f"{_REF}Measurement"} for feature in FEATURES},
    },
    "MeasurementColumns": {
        **_COLUMNS,
        "properties": {
            feature: {"type": "array", "items": {"$ref": f"{_REF}Measurement"}, "minItems": 1}
            for feature in FEATURES
        },
    },
}
_ROWS_BY_REF: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "items": {"$ref": f"{_REF}MeasurementRow"}, "minItems": 1},
        {"type": "array", "items": {"$ref": f"{_REF}MeasurementRecord"}, "minItems": 1},
        {"$ref": f"{_REF}MeasurementColumns"},
    ]
}
_SPLIT_BY_REF: dict[str, Any] = {
    **_SPLIT,
    "properties": {
        **_SPLIT["properties"],
        "data": {"type": "array", "items": {"$ref": f"{_REF}MeasurementRow"}, "minItems": 1},
    },
}
COMPONENTS.update(
    {
        "DataframeSplitInput": _format("dataframe_split", _SPLIT_BY_REF),
        "DataframeRecordsInput": _format(
            "dataframe_records",
            {"type": "array", "items": {"$ref": f"{_REF}MeasurementRecord"}, "minItems": 1},
        ),
        "InstancesInput": _format("instances", _ROWS_BY_REF),
        "InputsInput": _format("inputs", _ROWS_BY_REF),
    }
)
JSON_SCHEMA: Final[dict[str, Any]] = {
    "oneOf": [
        {"$ref": f"{_REF}{name}"}
        for name in (
            "DataframeSplitInput",
            "DataframeRecordsInput",
            "InstancesInput",
            "InputsInput",
        )
    ]
}


def add_components(document: dict[str, Any]) -> None:
    """Put the schemas `JSON_SCHEMA` refers to into `document`."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)


CSV_EXAMPLE: Final = ",".join(FEATURES) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"

INVOCATION_BODY: Final[dict[str, Any]] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": JSON_SCHEMA,
            "examples": {name: {"value": value} for name, value in EXAMPLES.items()},
        },
        "text/csv": {
            "schema": {
                "type": "string",
                "minLength": 1,
                "description": "A header line naming the four measurements (other columns are "
                "ignored), then one row per line; `;` and decimal commas are read too.",
            },
            "example": CSV_EXAMPLE,
        },
    },
}
