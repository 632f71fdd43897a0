"""Reading MLflow scoring-server requests: the same inputs `mlflow models serve` accepts.

JSON with one of `dataframe_split`, `dataframe_records`, `instances` or `inputs`, or a
CSV body (`text/csv`). Columns are matched by name in the spellings batch files may use
(`sepal_length`, `sepal length (cm)`, ...); rows given as bare lists are in the model's
feature order. What comes out is plain rows, validated like `/v1/predictions` rows.

The number of rows is checked as soon as the structure is decoded, before any per-row
work, and a column header is read once per distinct set of names, not once per row. The
route runs all of this off the event loop (api.bodies) once the body is large.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import pydantic_core

from irisq.csv_rules import CsvRejectedError, Header, detect_delimiter, parse_header
from irisq.schema import FEATURES, MAX_ROWS

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class InvocationError(ValueError):
    """The body is not in a format the scoring protocol defines; the message says why."""


class TooManyRowsError(InvocationError):
    """More rows than one request may carry."""


class UnusableValueError(InvocationError):
    """Well-formed, but a value no row could hold (a number with thousands of digits)."""


def _count_rows(rows: int) -> None:
    if rows > MAX_ROWS:
        raise TooManyRowsError(f"{rows:,} rows: at most {MAX_ROWS:,} in one request")


def parse(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """Rows as {feature: value} from a scoring request body."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return _from_csv(body)
    if media == "application/json" or media.endswith("+json"):
        try:
            payload = pydantic_core.from_json(body)
        except ValueError as exc:
            if "out of range" in str(exc):
                raise UnusableValueError(f"a number in the body is out of range ({exc})") from None
            raise InvocationError(f"the body is not valid JSON ({exc})") from None
        return _from_json(payload)
    raise InvocationError(
        f"unsupported content type {content_type or 'none'!r}: send application/json "
        f"(one of {', '.join(FORMATS)}) or text/csv"
    )


def _from_json(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        raise InvocationError(f"the JSON body must be an object with one of {', '.join(FORMATS)}")
    given = [key for key in FORMATS if key in payload]
    if len(given) != 1:
        found = ", ".join(sorted(map(str, payload))) or "no fields"
        raise InvocationError(f"expected exactly one of {', '.join(FORMATS)}; got {found}")
    data = payload[given[0]]
    if given[0] == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise InvocationError("dataframe_split needs 'data' (a list of rows)")
        columns = data.get("columns", list(FEATURES))
        if not isinstance(columns, list):
            raise InvocationError("dataframe_split.columns must be a list of names")
        _count_rows(len(data["data"]))
        return [_record(columns, row, i) for i, row in enumerate(data["data"])]
    if given[0] == "dataframe_records":
        if not isinstance(data, list):
            raise InvocationError("dataframe_records must be a list of objects")
        _count_rows(len(data))
        return [_mapping(record, i) for i, record in enumerate(data)]
    return _instances(data)


def _instances(data: Any) -> list[dict[str, Any]]:
    """`instances`/`inputs`: rows as lists or objects, or one object of columns."""
    if isinstance(data, dict):  # columnar: {"sepal_length": [..], ...}
        columns = list(data)
        values = [data[c] if isinstance(data[c], list) else [data[c]] for c in columns]
        if len({len(v) for v in values}) > 1:
            raise InvocationError("the columns of 'inputs' have different lengths")
        _count_rows(len(values[0]) if values else 0)
        return [_record(columns, list(row), i) for i, row in enumerate(zip(*values, strict=True))]
    if not isinstance(data, list):
        raise InvocationError("instances/inputs must be a list of rows")
    _count_rows(len(data))
    return [
        _mapping(row, i) if isinstance(row, dict) else _record(list(FEATURES), row, i)
        for i, row in enumerate(data)
    ]


def _mapping(record: Any, index: int) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise InvocationError(f"row {index}: expected an object of column → value")
    columns = list(record)
    return _record(columns, [record[c] for c in columns], index)


def _record(columns: Sequence[Any], row: Any, index: int) -> dict[str, Any]:
    if not isinstance(row, list | tuple) or len(row) != len(columns):
        raise InvocationError(f"row {index}: expected {len(columns)} values, one per column")
    header = _header(tuple(str(c) for c in columns))
    return {feature: row[i] for feature, i in header.feature_index.items()}


@lru_cache(maxsize=64)
def _header(columns: tuple[str, ...]) -> Header:
    """The features among `columns`: matched once per set of names, not once per row."""
    try:
        return parse_header(list(columns))
    except CsvRejectedError as exc:
        raise InvocationError(str(exc)) from None


def _from_csv(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvocationError("the CSV body is not UTF-8 text") from None
    delimiter = detect_delimiter(text.split("\n", 1)[0])
    if text.count("\n") > 2 * MAX_ROWS:  # before parsing: even with blank lines, too many
        raise TooManyRowsError(f"more than {2 * MAX_ROWS:,} lines: at most {MAX_ROWS:,} rows")
    lines = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    if not lines:
        raise InvocationError("the CSV body is empty: a header line, then rows")
    _count_rows(len(lines) - 1)
    try:
        header = parse_header(lines[0])
    except CsvRejectedError as exc:
        raise InvocationError(str(exc)) from None
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(lines[0]):
            raise InvocationError(
                f"CSV line {number}: {len(cells)} cells for {len(lines[0])} columns"
            )
        row: dict[str, Any] = {}
        for feature, i in header.feature_index.items():
            cell = cells[i].strip()
            if delimiter == ";":  # European spreadsheets: decimal commas
                cell = cell.replace(",", ".")
            try:
                row[feature] = float(cell)
            except ValueError:
                raise InvocationError(
                    f"CSV line {number}, column {lines[0][i]!r}: {cells[i]!r} is not a number"
                ) from None
        rows.append(row)
    return rows
