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
    # False for a file without a header line (UCI's iris.data): `columns` are then our names.
    present: bool = True

    @property
    def label_codes(self) -> bool:
        """Whether the label may be scikit-learn's class code (0, 1, 2: SPECIES order): in its
        `target` column, or in a headerless file's fifth column. Elsewhere (`class`,
        `species`, ...) numbers may count from 1, so only names are read there."""
        if self.label_index is None:
            return False
        return not self.present or normalise_name(self.columns[self.label_index]) == "target"


def parse_header(columns: list[str]) -> Header:
    """Match the four features (and a label column) among `columns`, or say what is missing.

    The column rules of every reader (batch files, `/invocations`): a measurement named
    twice, in any two spellings, is refused (which one is meant?), as MLflow refuses a frame
    with duplicate columns; other columns are carried along or ignored."""
    cleaned = [c.strip().strip(BOM) for c in columns]
    feature_index: dict[str, int] = {}
    label_index: int | None = None
    for i, name in enumerate(cleaned):
        key = normalise_name(name)
        feature = _FEATURE_KEYS.get(key)
        if feature in feature_index:
            first = cleaned[feature_index[feature]]
            raise CsvRejectedError(
                f"the columns {first!r} and {name!r} both name {feature}: give each "
                "measurement once"
            )
        if feature:
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


# UCI's iris.names calls the fifth attribute of iris.data `class`; a headerless file's result
# gets these names in its header line.
HEADERLESS_COLUMNS: Final = (*FEATURES, "class")


def read_first_line(line: str) -> tuple[Header, str]:
    """The header and the delimiter from a file's first line (its line end removed).

    A first line of four numbers, or four numbers and a species (UCI's `iris.data`:
    `5.1,3.5,1.4,0.2,Iris-setosa`), is a row of a file without header: the features are in
    FEATURES order, the fifth column is the label. Any other line must name the columns.
    """
    line = line.lstrip(BOM)
    delimiter = detect_delimiter(line)
    cells = split_header(line, delimiter)
    try:
        return parse_header(cells), delimiter
    except CsvRejectedError:
        for candidate in DELIMITERS:  # `5,1;3,5;...` has as many commas as semicolons
            row = split_header(line, candidate)
            if _is_headerless_row(row):
                return _headerless(len(row)), candidate
        # A line that names none of the features but holds a number is data, not a header.
        names = any(normalise_name(cell) in _FEATURE_KEYS for cell in cells)
        if not names and any(map(_is_number, cells)):
            raise CsvRejectedError(_missing_header(cells, delimiter)) from None
        raise


def _headerless(width: int) -> Header:
    """The layout of a file without header: the features, then perhaps the label."""
    features = {feature: i for i, feature in enumerate(FEATURES)}
    label = len(FEATURES) if width > len(FEATURES) else None
    return Header(HEADERLESS_COLUMNS[:width], features, label, present=False)


def _is_number(cell: str) -> bool:
    return bool(_DECIMAL.fullmatch(cell.strip().replace(",", ".")))


def _is_headerless_row(cells: list[str]) -> bool:
    """Four numbers, then perhaps a fifth: a species or a number (a class code)."""
    if len(cells) not in (4, 5) or not all(map(_is_number, cells[:4])):
        return False
    return len(cells) == 4 or _is_number(cells[4]) or normalise_label(cells[4]) is not None


def _missing_header(cells: list[str], delimiter: str) -> str:
    shown = ", ".join(repr(c.strip()[:20]) for c in cells[:6]) + (", ..." if len(cells) > 6 else "")
    return (
        f"the header line is missing: the first line holds data ({shown}), not column names; "
        f"add a first line naming the columns, such as {delimiter.join(FEATURES)} (a file "
        "without a header line is read only in the layout of UCI's iris.data: the four "
        "measurements in that order, then optionally the species)"
    )


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
