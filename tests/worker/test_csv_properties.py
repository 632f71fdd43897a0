"""Properties of the worker's CSV reading, on generated files and tiny blocks.

The scorer runs for real (pyarrow, the typed path and its text fallback, the result and
errors files) with a stand-in model; no stack, no MLflow.
"""

from __future__ import annotations

import csv
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
from worker.csv_reading import BatchOutcome, BatchRejectedError, neutralised

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
        with result.open(encoding="utf-8", newline="") as handle:
            scored = list(csv.reader(handle))
        with errors.open(encoding="utf-8", newline="") as handle:
            logged = list(csv.reader(handle))
    check_result(case, scored)
    assert logged[0] == ["line", "column", "value", "message"]
    return outcome, logged[1:]


def check_result(case: CsvCase, scored: list[list[str]]) -> None:
    """The result holds the good records, in order: their measurements, their other cells."""
    width = len(case.columns)
    assert scored[0][:width] == [neutralise(c) for c in case.columns]
    assert scored[0][width:] == [
        n if n not in {c.lower() for c in case.columns} else f"irisq_{n}"
        for n in ("species", *csv_reading.PROBABILITY_COLUMNS, "model_version")
    ]
    good = case.good
    assert len(scored) - 1 == len(good)
    for record, row in zip(good, scored[1:], strict=True):
        assert record.values is not None
        for feature, value in zip(FEATURES, record.values, strict=True):
            assert float(row[case.feature_index[feature]]) == value
        features = set(case.feature_index.values())
        for j, cell in enumerate(record.cells):
            if j not in features:
                assert row[j] == neutralise(cell)
        assert row[width:] == ["virginica", "0.25", "0.25", "0.5", "7"]


@FILE_PROPERTY
@given(csv_cases(), BLOCK_SIZES)
def test_a_well_formed_file_is_read_exactly(case: CsvCase, block_size: int) -> None:
    outcome, logged = score(case, block_size, skip=False)

    assert outcome.delimiter == case.delimiter
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
                assert all(2 <= int(line) <= lines for line, _, _, _ in logged)
                return
    assert not skip
    assert refused.errors
    assert all(2 <= e["line"] <= lines for e in refused.errors)


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
