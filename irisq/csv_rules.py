"""How irisq reads a CSV of measurements: delimiters, header spellings, labels, limits.

Shared by the API (which checks the header while the upload streams in) and the worker
(which parses and scores the rows). Pure Python: no pandas, no pyarrow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from irisq.schema import FEATURES, MAX_CM, SPECIES

BOM: Final = "\ufeff"
DELIMITERS: Final = (",", ";")

# Header spellings people use, reduced by `normalise_name`: `sepal_length`,
# `sepal length (cm)`, `SepalLengthCm`, `Sepal.Length`, `sepal-length-cm`, ...
_FEATURE_KEYS: Final = {feature.replace("_", ""): feature for feature in FEATURES}
# Columns that hold the true species, when a file has one (Kaggle: `Species`).
LABEL_KEYS: Final = ("species", "variety", "class", "label", "target", "irisspecies", "irisclass")


# A quoted cell: the quote opens a cell (after either delimiter), `""` inside is a quote.
_QUOTED_CELL: Final = re.compile(r'(?:^|(?<=[,;]))"(?:[^"]|"")*"')


class CsvRejectedError(ValueError):
    """The file cannot be scored as it is; the message says why, for a person."""


def normalise_name(name: str) -> str:
    """`" Sepal.Length (cm)"` → `"sepallength"`: case, spaces, punctuation and units dropped."""
    name = name.strip().strip(BOM).lower()
    # Only centimetres: a column in millimetres must not be read as if it were in cm.
    name = re.sub(r"\((cm|centimet(er|re)s?)\)", "", name)
    name = re.sub(r"[^a-z0-9]", "", name)
    return re.sub(r"(incm|cm)$", "", name)


@dataclass(frozen=True)
class Header:
    """Where the features (and the label, if any) are among a file's columns."""

    columns: tuple[str, ...]
    feature_index: dict[str, int]
    label_index: int | None


def parse_header(columns: list[str]) -> Header:
    """Match the four features (and a label column) among `columns`, or say what is missing."""
    cleaned = [c.strip().strip(BOM) for c in columns]
    feature_index: dict[str, int] = {}
    label_index: int | None = None
    for i, name in enumerate(cleaned):
        key = normalise_name(name)
        feature = _FEATURE_KEYS.get(key)
        if feature and feature not in feature_index:
            feature_index[feature] = i
        elif key in LABEL_KEYS and label_index is None:
            label_index = i
    missing = [f for f in FEATURES if f not in feature_index]
    if missing:
        found = ", ".join(repr(c) for c in cleaned) or "none"
        raise CsvRejectedError(
            f"missing required column(s) {', '.join(missing)}; found columns: {found}; "
            f"expected {', '.join(FEATURES)} (spellings such as 'Sepal.Length', "
            "'sepal length (cm)' or 'SepalLengthCm' are recognised)"
        )
    return Header(tuple(cleaned), feature_index, label_index)


def detect_delimiter(header_line: str) -> str:
    """`;` when the header has more semicolons than commas (European spreadsheets), else `,`.

    Quoted cells do not count: `"Notes, remarks, etc."` holds no delimiter.
    """
    bare = _QUOTED_CELL.sub("", header_line)
    return ";" if bare.count(";") > bare.count(",") else ","


def split_header(header_line: str, delimiter: str) -> list[str]:
    """The header's cells, quotes removed (a quoted cell may hold the delimiter)."""
    import csv

    return next(csv.reader([header_line], delimiter=delimiter))


def normalise_label(value: str) -> str | None:
    """`"Iris-setosa"`, `"Setosa"`, `"iris virginica"` → the species, else None."""
    key = re.sub(r"^iris[\s_\-.]*", "", value.strip().lower())
    return key if key in SPECIES else None


_DECIMAL: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NOT_FINITE: Final = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)


def check_measurement(text: str) -> tuple[float | None, str | None]:
    """(value, None) for a valid centimetre measurement, else (None, why not).

    A comma is read as a decimal point: no measurement under 100 cm has a thousands one.
    """
    raw = text.strip()
    if not raw:
        return None, "empty cell"
    number = raw.replace(",", ".")
    # Only plain decimals, as pyarrow reads them: float() alone would take `1_0` or `٣`.
    if not (_DECIMAL.fullmatch(number) or _NOT_FINITE.fullmatch(number)):
        return None, f"not a number: {raw[:40]!r}"
    value = float(number)
    if value != value:
        return None, "NaN is not a measurement"
    if value in (float("inf"), float("-inf")):
        return None, "infinite value"
    if value <= 0:
        return None, f"{raw} is not a length greater than 0"
    if value > MAX_CM:
        return None, f"{raw} cm is not a plausible Iris measurement (at most {MAX_CM:g})"
    return value, None


def neutralise(cell: str) -> str:
    """Defuse spreadsheet formulas (CSV injection) in carried-through text: `=1+1` → `'=1+1`."""
    if cell and cell[0] in "=+-@\t\r" and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


# ASCII digits and no newline before the end, as the worker's pyarrow (RE2) pattern reads.
_NUMBER: Final = re.compile(r"[+-]?[0-9]+([.,][0-9]+)?([eE][+-]?[0-9]+)?")
