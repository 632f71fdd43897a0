"""The OpenAPI document as the app really answers: problems as `application/problem+json`,
the schemas of bodies routes read themselves, and an optional key when the API runs open."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api import invocation_schema
from api.bodies import add_documented_schemas
from api.problems import PROBLEM_JSON, Problem

PROBLEM_REF = "#/components/schemas/Problem"
# FastAPI documents its own 422 body for every operation with parameters; ours replaces it.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document(app: FastAPI, open_api: bool) -> None:
    """Make `/openapi.json` describe what this app really answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        _add_schemas(document)
        _parameters_never_null(document)
        described = _as_problem_json(document)
        return _optional_auth(described) if open_api else described

    app.openapi = openapi  # type: ignore[method-assign]


def _add_schemas(document: dict[str, Any]) -> None:
    """The schemas the routes that read their own bodies refer to."""
    add_documented_schemas(document)
    invocation_schema.add_components(document)


def _parameters_never_null(document: dict[str, Any]) -> None:
    """An optional parameter is absent or given: FastAPI writes `str | None` as "a string or
    null", which a client (or a fuzzer) may take to mean sending the text `null`, and leaves
    a constraint given as `json_schema_extra` beside the union instead of on the string."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            parameters = operation.get("parameters", []) if isinstance(operation, dict) else []
            for parameter in parameters:
                schema = parameter.get("schema", {})
                branches = schema.get("anyOf", [])
                kept = [branch for branch in branches if branch.get("type") != "null"]
                if len(kept) == 1 < len(branches):
                    del schema["anyOf"]
                    schema.update(kept[0])


def _as_problem_json(document: dict[str, Any]) -> dict[str, Any]:
    """Document every problem answer as what it is on the wire: `application/problem+json`
    with the `Problem` schema. FastAPI puts a `responses=` model under `application/json`,
    and adds its own `HTTPValidationError` 422, which api.problems never sends.
    Idempotent: it rewrites `document` in place and may run on it again."""
    replaced = {PROBLEM_REF, *(f"#/components/schemas/{n}" for n in FASTAPI_VALIDATION_SCHEMAS)}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for answer in operation.get("responses", {}).values():
                content = answer.get("content", {})
                # Under whatever media type FastAPI filed it (a plain-text route's 503 goes
                # under text/plain): a problem is always sent as problem+json.
                for media, described in list(content.items()):
                    if described.get("schema", {}).get("$ref") in replaced:
                        del content[media]
                        content[PROBLEM_JSON] = {"schema": {"$ref": PROBLEM_REF}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if "Problem" not in schemas:
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}), Problem=problem)
    return document


def _optional_auth(document: dict[str, Any]) -> dict[str, Any]:
    """An open API (no keys configured) takes no key: say so, with an empty requirement."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and {} not in security:
                security.append({})
    return document
