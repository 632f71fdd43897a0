"""Properties of the worker's CSV reading, on generated files and tiny blocks.

The scorer runs for real (pyarrow, the typed path and its text fallback, the result and
errors files) with a stand-in model; no stack, no MLflow.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from api.upload import CsvInspector, UploadRefusedError
from irisq.csv_rules import check_measurement, neutralise, normalise_name, parse_header
from irisq.schema import FEATURES, SPECIES
from tests.support.csv_files import (
    BOM,
    CELL_TEXT,
    FILE_PROPERTY,
    NOT_MEASUREMENTS,
    ODD_BYTES,
    PROPERTY,
    CsvCase,
    csv_cases,
    damaged_files,
    is_measurement,
    measurements,
    not_measurements,
    spellings,
)
from worker import csv_reading
from worker.batch import BatchScorer
from worker.csv_reading import BatchOutcome, BatchRejectedError, Dialect
from worker.csv_writing import neutralised

# Blocks of a few lines, so that records, quotes and bad rows straddle block boundaries.
BLOCK_SIZES = st.integers(8, 300)


class StandIn:
    """A model that always answers the same: the reading is under test, not the scoring."""

    classes_ = np.array(SPECIES)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        assert matrix.shape[1] == len(FEATURES)
        return np.tile([0.25, 0.25, 0.5], (len(matrix), 1))


def score(case: CsvCase, block_size: int, skip: bool) -> tuple[BatchOutcome, list[list[str]]]:
    """Score the file; the outcome, and the errors file's rows (without its header)."""
    note(f"file: {case.text!r}, blocks of {block_size} bytes")
    with tempfile.TemporaryDirectory() as folder:
        source, result, errors = (Path(folder) / n for n in ("in.csv", "out.csv", "err.csv"))
        source.write_bytes(case.content)
        with mock.patch.object(csv_reading, "BLOCK_SIZE", block_size):
            outcome = BatchScorer(StandIn(), "7", skip, lambda rows: None).score(
                source, result, errors
            )
        written = result.read_bytes().decode()
        with errors.open(encoding="utf-8", newline="") as handle:
            logged = list(csv.reader(handle))
    check_dialect(case, outcome, written)
    check_result(case, list(csv.reader(io.StringIO(written.lstrip(BOM)), delimiter=case.delimiter)))
    assert logged[0] == ["line", "column", "value", "message"]
    return outcome, logged[1:]


def decimal_mark(case: CsvCase) -> str:
    """The rule: a `;` file's first measurement written with a mark gives it (`,` if none)."""
    if case.delimiter == ",":
        return "."
    features = sorted(case.feature_index.values())
    for record in case.records:
        for cell in (record.cells[i] for i in features if i < len(record.cells)):
            if "," in cell or "." in cell:
                return "," if "," in cell else "."
    return ","


def check_dialect(case: CsvCase, outcome: BatchOutcome, written: str) -> None:
    """The result is written as the input was: delimiter, decimal mark, line ends, BOM."""
    eol = "\r\n" if case.text.partition("\n")[0].endswith("\r") else "\n"
    assert outcome.dialect == Dialect(
        case.delimiter, decimal_mark(case), eol, case.text.startswith(BOM)
    )
    assert written.startswith(BOM) == case.text.startswith(BOM)
    assert written.endswith(eol)
    if eol == "\r\n":  # no cell holds a CR: each CRLF ends a line
        assert written.count("\r\n") == len(case.good) + 1
    else:
        assert "\r" not in written


def check_result(case: CsvCase, scored: list[list[str]]) -> None:
    """The result holds the good records, in order: their measurements as written, their
    other cells defused, and the prediction with the input's decimal mark."""
    width = len(case.columns)
    assert scored[0][:width] == [neutralise(c) for c in case.columns]
    assert scored[0][width:] == [
        n if n not in {c.lower() for c in case.columns} else f"irisq_{n}"
        for n in ("species", *csv_reading.PROBABILITY_COLUMNS, "model_version")
    ]
    good = case.good
    assert len(scored) - 1 == len(good)
    features = set(case.feature_index.values())
    mark = decimal_mark(case)
    for record, row in zip(good, scored[1:], strict=True):
        assert record.values is not None
        for j, cell in enumerate(record.cells):
            assert row[j] == (cell if j in features else neutralise(cell))
        quarter, half = f"0{mark}25", f"0{mark}5"
        assert row[width:] == ["virginica", quarter, quarter, half, "7"]


@FILE_PROPERTY
@given(csv_cases(), BLOCK_SIZES)
def test_a_well_formed_file_is_read_exactly(case: CsvCase, block_size: int) -> None:
    outcome, logged = score(case, block_size, skip=False)

    assert outcome.dialect.delimiter == case.delimiter
    assert outcome.header.columns == case.columns
    assert outcome.header.feature_index == case.feature_index
    assert (outcome.rows_read, outcome.rows_scored, outcome.rows_rejected) == (
        len(case.records),
        len(case.records),
        0,
    )
    assert logged == []


@FILE_PROPERTY
@given(csv_cases(bad_rows=True), BLOCK_SIZES)
def test_bad_cells_and_rows_are_skipped_and_listed_by_line_and_column(
    case: CsvCase, block_size: int
) -> None:
    outcome, logged = score(case, block_size, skip=True)

    assert [(int(line), column) for line, column, _, _ in logged] == [
        (line, neutralise(column or "")) for line, column in case.expected_errors
    ]
    assert all(message for _, _, _, message in logged)
    bad = len(case.records) - len(case.good)
    assert (outcome.rows_read, outcome.rows_scored, outcome.rows_rejected) == (
        len(case.records),
        len(case.good),
        bad,
    )


@FILE_PROPERTY
@given(csv_cases(bad_rows=True), BLOCK_SIZES)
def test_a_file_with_bad_cells_is_refused_at_its_first_one(case: CsvCase, block_size: int) -> None:
    expected = case.expected_errors
    if not expected:
        outcome, _ = score(case, block_size, skip=False)
        assert outcome.rows_scored == len(case.records)
        return

    with pytest.raises(BatchRejectedError) as refused:
        score(case, block_size, skip=False)

    # The errors of the first block that has any, sorted: a prefix of all of them.
    found = [(e["line"], e["column"]) for e in refused.value.errors]
    assert 1 <= len(found) <= csv_reading.MAX_REPORTED_ERRORS
    assert found == expected[: len(found)]
    line, column = expected[0]
    where = f"line {line}" + (f", column {column!r}" if column else "")
    assert f"the file was refused: {where}: " in str(refused.value)


@FILE_PROPERTY
@given(
    st.one_of(damaged_files(), ODD_BYTES),
    BLOCK_SIZES,
    st.sampled_from([16, 1 << 20]),
    st.booleans(),
)
def test_whatever_the_upload_lets_through_is_scored_or_refused_by_line(
    content: bytes, block_size: int, max_open_record: int, skip: bool
) -> None:
    """The worker never fails on a file the API accepted: it scores it or names bad lines
    (an unclosed quote included, however long the record it opens)."""
    inspector = CsvInspector(max_bytes=10**9, max_rows=10**9)
    try:
        inspector.feed(content)
        inspector.finish()
    except UploadRefusedError:
        return
    note(f"file: {content!r}, blocks of {block_size} bytes")
    lines = content.count(b"\n") + 1
    first = 1 if inspector.headerless else 2  # the first line that holds a row
    with tempfile.TemporaryDirectory() as folder:
        source, result, errors = (Path(folder) / n for n in ("in.csv", "out.csv", "err.csv"))
        source.write_bytes(content)
        with (
            mock.patch.object(csv_reading, "BLOCK_SIZE", block_size),
            mock.patch.object(csv_reading, "MAX_OPEN_RECORD", max_open_record),
        ):
            scorer = BatchScorer(StandIn(), "7", skip, lambda rows: None)
            try:
                outcome = scorer.score(source, result, errors)
            except BatchRejectedError as exc:
                refused = exc
            else:
                assert outcome.rows_read == outcome.rows_scored + outcome.rows_rejected
                assert outcome.rows_read <= inspector.rows
                with errors.open(encoding="utf-8", newline="") as handle:
                    logged = list(csv.reader(handle))[1:]
                assert len(logged) >= outcome.rows_rejected
                assert all(first <= int(line) <= lines for line, _, _, _ in logged)
                return
    assert not skip
    assert refused.errors
    assert all(first <= e["line"] <= lines for e in refused.errors)


def _quoted(cell: str, delimiter: str) -> str:
    if delimiter in cell or '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def headerless_files(draw: st.DrawFn) -> tuple[bytes, str, list[list[str]]]:
    """UCI's layout: four measurements, perhaps a species; rows of any valid spelling, some
    bad, blank lines, either delimiter and line end, a BOM or not. (content, delimiter,
    the cells of each line, [] for a blank one)."""
    delimiter = draw(st.sampled_from([",", ";"]))
    width = draw(st.sampled_from([4, 5]))
    labels = st.sampled_from(["Iris-setosa", "Iris-versicolor", "virginica", "0", "2.0"])
    cell = measurements().map(lambda m: m[0].strip())
    good = st.tuples(st.lists(cell, min_size=4, max_size=4), labels).map(
        lambda drawn: [*drawn[0], drawn[1]][:width]
    )
    bad = not_measurements().filter(lambda c: "\n" not in c)  # one line a row
    rows = [draw(good)]  # the first line must be a row of numbers
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["good", "good", "bad", "blank"]))
        cells = [] if kind == "blank" else draw(good)
        if kind == "bad":
            cells[draw(st.integers(0, 3))] = draw(bad)
        if cells and not "".join(cells):
            cells[0] = "x"  # not a blank line
        rows.append(cells)
    text = draw(st.sampled_from(["", BOM]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    for cells in rows:
        text += delimiter.join(_quoted(cell, delimiter) for cell in cells) + end
    return text.encode(), delimiter, rows


@FILE_PROPERTY
@given(headerless_files(), BLOCK_SIZES)
def test_a_file_without_header_in_uci_layout_is_read_from_its_first_line(
    file: tuple[bytes, str, list[list[str]]], block_size: int
) -> None:
    content, delimiter, rows = file
    note(f"file: {content!r}, blocks of {block_size} bytes")
    inspector = CsvInspector(max_bytes=10**9, max_rows=10**9)
    inspector.feed(content)
    inspector.finish()
    with tempfile.TemporaryDirectory() as folder:
        source, result, errors = (Path(folder) / n for n in ("in.csv", "out.csv", "err.csv"))
        source.write_bytes(content)
        with mock.patch.object(csv_reading, "BLOCK_SIZE", block_size):
            outcome = BatchScorer(StandIn(), "7", True, lambda rows: None).score(
                source, result, errors
            )
        written = result.read_text(encoding="utf-8-sig")
        logged = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8"))))[1:]

    assert inspector.headerless
    assert inspector.rows == len(rows)  # every line is a row (blank ones counted)
    width = len(rows[0])
    assert not outcome.header.present
    assert outcome.header.columns == (*FEATURES, "class")[:width]
    assert outcome.dialect.delimiter == delimiter
    valid = [
        (line, cells)
        for line, cells in enumerate(rows, start=1)
        if cells and all(is_measurement(c) for c in cells[:4])
    ]
    bad_lines = {line for line, cells in enumerate(rows, start=1) if cells} - {
        line for line, _ in valid
    }
    assert {int(line) for line, _, _, _ in logged} == bad_lines
    scored = list(csv.reader(io.StringIO(written), delimiter=delimiter))
    assert scored[0][:width] == list(outcome.header.columns)
    assert [row[:width] for row in scored[1:]] == [cells for _, cells in valid]
    assert outcome.rows_scored == len(valid)
    assert outcome.labelled == (len(valid) if width == 5 else 0)  # names and codes alike


# --- the pieces on their own --------------------------------------------------------


@PROPERTY
@given(measurements())
def test_a_measurement_is_read_as_its_value(cell: tuple[str, float]) -> None:
    text, value = cell

    assert check_measurement(text) == (value, None)


@PROPERTY
@given(st.one_of(st.text(), not_measurements(), st.sampled_from(NOT_MEASUREMENTS)))
@example("1_0").via("Python's float() reads digit separators")
@example("٣").via("and digits of other scripts")
def test_any_text_is_a_measurement_or_says_why_not(text: str) -> None:
    value, why = check_measurement(text)

    if is_measurement(text):
        assert why is None
        assert value == float(text.strip().replace(",", "."))
    else:
        assert value is None
        assert why


@PROPERTY
@given(st.lists(st.one_of(CELL_TEXT, st.text(), st.sampled_from(NOT_MEASUREMENTS))))
@example(["-٣", "=1+1", "+5", "-5\n", "@x", "\tx", "-1e5", "5,1"])
def test_the_worker_defuses_formulas_as_the_shared_rule_does(cells: list[str]) -> None:
    assert neutralised(pa.array(cells, pa.string())).to_pylist() == [neutralise(c) for c in cells]


@PROPERTY
@given(
    st.tuples(*(spellings(f) for f in FEATURES)),
    st.permutations(range(6)),
    st.sampled_from(["species", " Species ", "variety", "CLASS", "label", "target", "Iris class"]),
)
def test_every_header_spelling_is_recognised(
    names: tuple[str, ...], order: list[int], label: str
) -> None:
    columns = [*names, label, "notes"]
    columns = [columns[i] for i in order]

    header = parse_header(columns)

    assert {f: header.columns[i] for f, i in header.feature_index.items()} == {
        f: n.strip() for f, n in zip(FEATURES, names, strict=True)
    }
    assert header.label_index == columns.index(label)
    keys = [normalise_name(n) for n in names]
    assert keys == [f.replace("_", "") for f in FEATURES]


@PROPERTY
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_written_by_python_is_checked_by_its_value(value: float) -> None:
    read, why = check_measurement(repr(value))

    if math.isfinite(value) and 0 < value <= 100:
        assert (read, why) == (value, None)
    else:
        assert read is None
        assert why
