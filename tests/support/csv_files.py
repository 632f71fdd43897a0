"""Hypothesis strategies for the CSV files irisq reads, each with what reading it must give.

A generated `CsvCase` knows its own truth: the columns the header names once cleaned, where
the four features are, and for every data record its physical line, its measurements and
(for files with bad rows) which cells the reader must report. The API's inspector and the
worker's reader are both checked against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st

from irisq.schema import FEATURES

BOM = "\ufeff"

# Quick enough for `make test`: each property takes a few seconds at most. Derandomized:
# CI runs the same examples every time, so a red build means a change broke something,
# not that a new random example turned up (explore with more examples and seeds locally).
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# For properties that generate whole files (and the worker's: write, read, score them).
FILE_PROPERTY = settings(PROPERTY, max_examples=100)

# Text that may sit anywhere in a cell; CR is refused at upload (lines end with LF or CRLF).
# Often made of what matters to a CSV reader: line breaks, quotes, delimiters.
CELL_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=12),
    st.lists(st.sampled_from(["a", "\n", '"', ",", ";", " ", "é", "="]), max_size=8).map("".join),
)

# A measurement the reader must accept, by this grammar (a comma may be the decimal mark).
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")

# Cells that are not measurements, including what pyarrow would read as null or as a number.
NOT_MEASUREMENTS = (
    "",
    " ",
    "NA",
    "N/A",
    "nan",
    "NaN",
    "-nan",
    "null",
    "NULL",
    "#N/A",
    "inf",
    "-inf",
    "Infinity",
    "1_0",
    "٥",
    "５",
    "0x10",
    "1e",
    "e5",
    "5.1.2",
    "--5",
    "five",
    "0",
    "-0",
    "0.0",
    "0,0",
    "-5.1",
    "100.0001",
    "100,5",
    "101",
    "1e3",
    "1e400",
    "1e-400",
    "-1e-9",
    "+0",
)


def is_measurement(text: str) -> bool:
    """The specification of a valid cell: a plain decimal number in (0, 100] cm."""
    raw = text.strip().replace(",", ".")
    return bool(_PLAIN_NUMBER.fullmatch(raw)) and 0 < float(raw) <= 100


@st.composite
def measurements(draw: st.DrawFn) -> tuple[str, float]:
    """(cell text, its value): `5.1`, `5,1`, `+05.10`, `.5`, `51e-1`, ` 7 `, ..."""
    decimals = draw(st.integers(0, 6))
    scaled = draw(st.integers(1, 100 * 10**decimals))
    digits = str(scaled).rjust(decimals + 1, "0")
    whole, fraction = digits[: len(digits) - decimals], digits[len(digits) - decimals :]
    style = draw(st.sampled_from(["fixed", "fixed", "fixed", "padded", "exponent", "bare"]))
    if style == "exponent":
        text = f"{whole}{fraction}e-{decimals}"
    elif style == "bare" and whole == "0" and fraction:
        text = f".{fraction}"
    elif fraction:
        text = f"{whole}.{fraction}"
    else:
        text = whole + draw(st.sampled_from(["", ".", ".0"]))
    if style == "padded":
        text = draw(st.sampled_from(["+", "0", ""])) + text
    value = float(text)
    if draw(st.booleans()):
        text = text.replace(".", ",")
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from([" ", "  "])) + text + draw(st.sampled_from(["", " "]))
    return text, value


def not_measurements() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NOT_MEASUREMENTS), CELL_TEXT.filter(lambda t: not is_measurement(t))
    )


@st.composite
def spellings(draw: st.DrawFn, feature: str) -> str:
    """`sepal_length`, `Sepal.Length`, `SEPAL LENGTH (cm)`, ` SepalLengthCm `, ..."""
    case = draw(st.sampled_from([str.lower, str.title, str.upper]))
    separator = draw(st.sampled_from(["_", " ", ".", "-", ""]))
    unit = draw(
        st.sampled_from(
            ["", "", " (cm)", "Cm", "_cm", " in cm", "(cm)", " (centimetres)", " (Centimeters)"]
        )
    )
    pad = draw(st.sampled_from(["", "", " "]))
    return pad + separator.join(case(word) for word in feature.split("_")) + unit + pad


def _names_a_feature(name: str) -> bool:
    letters = re.sub(r"[^a-z0-9]", "", name.lower())
    return "sepal" in letters or "petal" in letters


# Any other header cell: no line break (a header is one line), no BOM inside; often full of
# delimiters and quotes.
EXTRA_NAMES = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n" + BOM), max_size=12),
    st.lists(st.sampled_from(["a", ",", ";", " ", '"', "é"]), max_size=12).map("".join),
).filter(lambda name: not _names_a_feature(name))


@dataclass(frozen=True)
class Record:
    """One data record of a generated file (blank lines are not records)."""

    line: int  # the physical line it starts on; the header is line 1
    cells: tuple[str, ...]  # as a CSV reader returns them (unquoted)
    values: tuple[float, ...] | None  # in FEATURES order; None when the record is bad
    errors: tuple[str | None, ...]  # the bad columns' names; None: wrong number of cells


@dataclass(frozen=True)
class CsvCase:
    text: str
    delimiter: str
    columns: tuple[str, ...]  # header cells as a reader should name them
    feature_index: dict[str, int]
    records: tuple[Record, ...]

    @property
    def content(self) -> bytes:
        return self.text.encode()

    @property
    def lines_after_header(self) -> int:
        """Physical lines after the header (blank ones and those inside quotes included)."""
        rest = self.text.partition("\n")[2]
        return rest.count("\n") + (0 if rest.endswith("\n") or not rest else 1)

    @property
    def good(self) -> list[Record]:
        return [r for r in self.records if r.values is not None]

    @property
    def expected_errors(self) -> list[tuple[int, str | None]]:
        """(line, column) of every bad cell or row, in the order the reader reports them."""
        found = [(r.line, column) for r in self.records for column in r.errors]
        return sorted(found, key=lambda e: (e[0], e[1] or ""))


def _render(cell: str, delimiter: str, quote: bool) -> str:
    if quote or delimiter in cell or '"' in cell or "\n" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def csv_cases(draw: st.DrawFn, bad_rows: bool = False) -> CsvCase:
    """A file irisq must read; with `bad_rows`, some records have bad cells or shapes."""
    delimiter = draw(st.sampled_from([",", ";"]))
    other = ";" if delimiter == "," else ","
    extras = draw(st.lists(EXTRA_NAMES, max_size=3))
    slots: list[str | int] = [*FEATURES, *range(len(extras))]
    slots = draw(st.permutations(slots))
    header = [draw(spellings(s)) if isinstance(s, str) else extras[s] for s in slots]
    width = len(slots)
    ends = st.sampled_from(["\n", "\r\n"])

    # A header cell holding a delimiter character is quoted, or no one could tell the
    # delimiter; a quoted one must not count.
    text = draw(st.sampled_from(["", BOM])) + delimiter.join(
        _render(cell, delimiter, other in cell or draw(st.booleans())) for cell in header
    )
    text += draw(ends)
    line = 2
    records: list[Record] = []
    kinds = st.sampled_from(["good", "good", "good", "blank"] + ["bad"] * bad_rows)
    items = draw(st.lists(kinds, min_size=1, max_size=12))
    if "good" not in items and "bad" not in items:
        items.append("good")
    for i, kind in enumerate(items):
        last = i == len(items) - 1
        if kind == "blank":
            text += draw(ends)
            line += 1
            continue
        cells: list[str] = []
        values: dict[str, float] = {}
        for slot in slots:
            if isinstance(slot, str):
                cell, values[slot] = draw(measurements())
                cells.append(cell)
            else:
                cells.append(draw(CELL_TEXT))
        found: tuple[float, ...] | None = tuple(values[f] for f in FEATURES)
        errors: tuple[str | None, ...] = ()
        if kind == "bad":
            cells, errors = draw(_spoil(cells, slots, header))
            found = None
        if len(cells) == width and all(c == "" for c in cells):
            found, errors = None, ()  # every cell empty: a blank row, skipped silently
        else:
            records.append(Record(line, tuple(cells), found, errors))
        rendered = delimiter.join(_render(c, delimiter, draw(st.booleans())) for c in cells)
        end = "" if last and draw(st.booleans()) else draw(ends)
        text += rendered + end
        line += (rendered + end).count("\n")
    columns = tuple(cell.strip() for cell in header)
    feature_index = {f: slots.index(f) for f in FEATURES}
    return CsvCase(text, delimiter, columns, feature_index, tuple(records))


@st.composite
def _spoil(
    draw: st.DrawFn, cells: list[str], slots: list[str | int], header: list[str]
) -> tuple[list[str], tuple[str | None, ...]]:
    """Make a record bad: some measurements replaced, or the wrong number of cells."""
    kind = draw(st.sampled_from(["cells", "cells", "same_token", "short", "long"]))
    features = [j for j, s in enumerate(slots) if isinstance(s, str)]
    if kind == "short":
        kept = cells[: draw(st.integers(1, len(cells) - 1))]
        if kept == [""]:
            kept = ["x"]  # a lone empty cell would be a blank line
        return kept, (None,)
    if kind == "long":
        return cells + draw(st.lists(CELL_TEXT, min_size=1, max_size=3)), (None,)
    cells = list(cells)
    if kind == "same_token":  # `NA;NA;NA;NA` and nothing else on the line
        token = draw(not_measurements())
        spoiled = features
        cells = [token if j in features else "" for j in range(len(cells))]
    else:
        spoiled = sorted(draw(st.sets(st.sampled_from(features), min_size=1)))
        for j in spoiled:
            cells[j] = draw(not_measurements())
    return cells, tuple(header[j].strip() for j in spoiled)


HEADER = b"sepal_length,sepal_width,petal_length,petal_width\n"
ROW = b"5.1,3.5,1.4,0.2\n"

# Bytes with the characters that matter to the inspector much more often than at random.
_TOKENS = [
    HEADER,
    HEADER.replace(b",", b";"),
    ROW,
    b"\n",
    b"\r\n",
    b"\r",
    b",",
    b";",
    b'"',
    b" ",
    BOM.encode(),
    b"\xc3",
    b"\xa9",
    b"\xe2\x82\xac",
    b"\xff",
    b"\x00",
    b"sepal_length",
    b"Petal.Width",
]
ODD_BYTES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(_TOKENS), max_size=30).map(b"".join),
    st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=3)), max_size=30).map(b"".join),
)


# What may be spliced into a file that the upload check would still let through.
_SPLICES = [
    b",",
    b";",
    b'"',
    b'""',
    b'"\n"',
    b"\n",
    b"\r\n",
    b" ",
    b"x",
    b"NA",
    b"0",
    b"-1",
    b"1e400",
    b"5,1",
    b"\xc3\xa9",
    BOM.encode(),
    b"\x00",
]


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    """A generated file with delimiters, quotes, line breaks, words spliced in anywhere."""
    content = draw(csv_cases(bad_rows=True)).content
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(content)))
        splice = b"".join(draw(st.lists(st.sampled_from(_SPLICES), min_size=1, max_size=3)))
        content = content[:where] + splice + content[where:]
    return content
