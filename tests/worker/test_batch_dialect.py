"""Batch results as the input was written, on the files people really have.

A French spreadsheet's export (`;`, decimal commas, CRLF, BOM) comes back the same way;
measurements come back as written; scikit-learn's own frame (`target` codes) and UCI's
headerless `iris.data` are read with their labels; a file without header in any other layout
is refused, by the API's streaming check and by the worker alike.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from api.upload import CsvInspector, UploadRefusedError
from irisq.csv_rules import CsvRejectedError
from irisq.schema import FEATURES, SPECIES
from worker import csv_reading
from worker.batch import BatchScorer
from worker.csv_reading import BatchOutcome, BatchRejectedError, Dialect, read_header

BOM = codecs.BOM_UTF8
PROBABILITIES = [f"probability_{species}" for species in SPECIES]
OURS = ["species", *PROBABILITIES, "model_version"]
IRIS = load_iris(as_frame=True)
MEASUREMENTS = IRIS.data.to_numpy()
TRUE_SPECIES = np.asarray(SPECIES)[IRIS.target.to_numpy()]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reading, "BLOCK_SIZE", 256)  # a file of 150 rows spans ~20 blocks


def score(
    model: Any, tmp_path: Path, content: bytes, skip: bool = False
) -> tuple[BatchOutcome, bytes, list[list[str]]]:
    """Check the upload as the API does, score it; the outcome, the result's bytes, and the
    errors file's rows."""
    inspector = CsvInspector(max_bytes=10**9, max_rows=10**9)
    inspector.feed(content)
    inspector.finish()
    source, result, errors = (tmp_path / n for n in ("in.csv", "out.csv", "err.csv"))
    source.write_bytes(content)
    outcome = BatchScorer(model, "3", skip, lambda rows: None).score(source, result, errors)
    assert inspector.headerless is not outcome.header.present
    assert outcome.rows_read <= inspector.rows
    logged = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8"))))
    return outcome, result.read_bytes(), logged[1:]


def records(result: bytes, delimiter: str) -> list[list[str]]:
    text = result.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def french_export() -> bytes:
    """What a French spreadsheet saves as "CSV UTF-8": `;`, decimal commas, CRLF, a BOM;
    numbers as the cells show them (`6,30` keeps its zero), text quoted when it must be."""
    lines = ["Sepal.Length;Sepal.Width;Petal.Length;Petal.Width;remarque"]
    for i, row in enumerate(MEASUREMENTS):
        cells = [f"{value:.2f}".replace(".", ",") for value in row]
        remark = ['"jardin; nord"', "=HYPERLINK(1)", "", "rosée"][i % 4]
        lines.append(";".join([*cells, remark]))
    return BOM + "".join(line + "\r\n" for line in lines).encode()


def uci_iris_data() -> bytes:
    """UCI's iris.data as distributed: no header, one decimal, `Iris-` names, and a blank line
    at the end."""
    lines = [
        ",".join(f"{value:.1f}" for value in row) + f",Iris-{species}"
        for row, species in zip(MEASUREMENTS, TRUE_SPECIES, strict=True)
    ]
    return ("\n".join(lines) + "\n\n").encode()


def predicted(model: Any, matrix: np.ndarray) -> np.ndarray:
    """Probabilities in SPECIES order, rounded as the result writes them."""
    classes = list(model.classes_)
    probabilities: np.ndarray = model.predict_proba(matrix)
    return np.round(probabilities[:, [classes.index(s) for s in SPECIES]], 6)


# --- 1. the result is written in the input's dialect ---------------------------------------


def test_a_semicolon_decimal_comma_crlf_bom_file_comes_back_the_same_way(
    model: Any, tmp_path: Path
) -> None:
    outcome, result, _ = score(model, tmp_path, french_export())

    assert outcome.dialect == Dialect(";", ",", "\r\n", True)
    assert outcome.rows_scored == 150
    assert result.startswith(BOM)
    assert result.count(BOM) == 1
    text = result.decode("utf-8")
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 151  # header and rows; no bare LF, no bare CR
    assert "\n" not in text.replace("\r\n", "")
    assert "\r" not in text.replace("\r\n", "")
    rows = records(result, ";")
    names = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "remarque"]
    assert rows[0] == [*names, *OURS]
    expected = predicted(model, MEASUREMENTS)
    for row, probabilities in zip(rows[1:], expected, strict=True):
        assert len(row) == 10  # one cell a column: `;` delimits, commas are decimal marks
        written = row[6:9]
        assert all(re.fullmatch(r"[01](,[0-9]{1,6})?", p) for p in written), written
        read = [float(p.replace(",", ".")) for p in written]
        assert read == pytest.approx(probabilities.tolist(), abs=1e-9)
    assert [row[4] for row in rows[1:5]] == ["jardin; nord", "'=HYPERLINK(1)", "", "rosée"]
    assert any("," in row[7] for row in rows[1:])  # `0,973`, never `0.973`
    assert not any("." in cell for row in rows[1:] for cell in row[:4] + row[6:9])


def test_a_comma_file_with_lf_and_no_bom_stays_so(model: Any, tmp_path: Path) -> None:
    content = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5"

    outcome, result, _ = score(model, tmp_path, content)

    assert outcome.dialect == Dialect(",", ".", "\n", False)
    assert not result.startswith(BOM)
    assert b"\r" not in result
    assert result.count(b"\n") == 3
    rows = records(result, ",")
    assert [row[4] for row in rows[1:]] == ["setosa", "virginica"]
    assert all(re.fullmatch(r"[01](\.[0-9]{1,6})?", p) for row in rows[1:] for p in row[5:8])


# --- 2. measurements are carried through as written ---------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "cells", "values"),
    [
        (",", ["6.30", "3.3", "6.0", "2.50"], [6.3, 3.3, 6.0, 2.5]),
        (",", ["+5.1", " 3.5 ", ".5", "2e-1"], [5.1, 3.5, 0.5, 0.2]),
        (",", ['"5,1"', "05.10", "1.40", "0.2"], [5.1, 5.1, 1.4, 0.2]),
        (";", ["5,1", "3.5", "1,40", "0,2"], [5.1, 3.5, 1.4, 0.2]),
        (";", ["7", "3,20", "4,7", "1,4"], [7.0, 3.2, 4.7, 1.4]),
    ],
)
def test_measurements_are_carried_through_as_written_and_scored_by_value(
    model: Any, tmp_path: Path, delimiter: str, cells: list[str], values: list[float]
) -> None:
    header = delimiter.join([*FEATURES, "note"])
    row = delimiter.join([*cells, "+1 pot"])
    content = f"{header}\n{row}\n{row}\n".encode()

    outcome, result, _ = score(model, tmp_path, content)

    written = [cell.strip('"') for cell in cells]
    rows = records(result, delimiter)
    assert [r[:4] for r in rows[1:]] == [written, written]
    assert [r[4] for r in rows[1:]] == ["'+1 pot"] * 2  # text is still defused
    mark = outcome.dialect.decimal
    expected = predicted(model, np.asarray([values]))[0]
    for r in rows[1:]:
        assert [float(p.replace(mark, ".")) for p in r[6:9]] == pytest.approx(expected.tolist())


def test_a_bad_measurement_is_still_named_by_line_and_column(model: Any, tmp_path: Path) -> None:
    content = b"sepal_length;sepal_width;petal_length;petal_width\n"
    content += b"5,1;3,5;1,4;0,2\n5,1;=1+1;1,4;0,2\n"

    outcome, result, logged = score(model, tmp_path, content, skip=True)

    assert logged == [["3", "sepal_width", "'=1+1", "not a number: '=1+1'"]]
    assert [r[:4] for r in records(result, ";")[1:]] == [["5,1", "3,5", "1,4", "0,2"]]
    assert outcome.rows_rejected == 1


# --- 3. scikit-learn's frame: `target` holds codes -----------------------------------------


@pytest.mark.parametrize("index", [False, True])
@pytest.mark.parametrize("codes", ["int", "float"])
def test_scikit_learns_frame_is_scored_against_its_target_codes(
    model: Any, tmp_path: Path, index: bool, codes: str
) -> None:
    frame = IRIS.frame.astype({"target": codes})  # `0` or `0.0`, as to_csv writes them
    content = frame.to_csv(index=index).encode()

    outcome, result, _ = score(model, tmp_path, content)

    assert outcome.header.columns[outcome.header.label_index or 0] == "target"
    right = int((model.predict(MEASUREMENTS) == TRUE_SPECIES).sum())
    assert (outcome.labelled, outcome.correct) == (150, right)
    assert 140 <= right < 150  # a real model: a few flowers are predicted wrong
    rows = records(result, ",")
    assert rows[0][-6:-5] == ["target"]
    written = {"0", "1", "2"} if codes == "int" else {"0.0", "1.0", "2.0"}
    assert {row[-6] for row in rows[1:]} == written  # carried through as written


def test_only_codes_0_1_2_in_target_are_species_and_only_in_target(
    model: Any, tmp_path: Path
) -> None:
    row = "5.1,3.5,1.4,0.2"
    labels = ["0", " 1.0 ", "2.", "3", "1.5", "-1", "x", "", "1e0", "Iris-setosa"]
    content = "sepal_length,sepal_width,petal_length,petal_width,target,class\n"
    content += "".join(f"{row},{label},{label}\n" for label in labels)

    outcome, _, _ = score(model, tmp_path, content.encode())

    # `0`, ` 1.0 `, `2.` and the name in `target`; `class` numbers may count from 1: names only.
    assert outcome.header.label_index == 4
    assert outcome.labelled == 4
    assert outcome.correct == 2  # 5.1,3.5,1.4,0.2 is a setosa: right for `0` and the name
    (tmp_path / "in.csv").unlink()
    content = content.replace(",target,", ",width,")  # now `class` is the label column
    outcome, _, _ = score(model, tmp_path, content.encode())
    assert outcome.header.columns[outcome.header.label_index or 0] == "class"
    assert outcome.labelled == 1


# --- 4. UCI's iris.data: no header -----------------------------------------------------------


def test_uci_iris_data_without_header_is_read_with_its_labels(model: Any, tmp_path: Path) -> None:
    content = uci_iris_data()

    outcome, result, _ = score(model, tmp_path, content)

    assert not outcome.header.present
    assert outcome.header.columns == (*FEATURES, "class")
    assert outcome.dialect == Dialect(",", ".", "\n", False)
    right = int((model.predict(MEASUREMENTS) == TRUE_SPECIES).sum())
    assert (outcome.rows_read, outcome.rows_scored) == (150, 150)
    assert (outcome.labelled, outcome.correct) == (150, right)
    rows = records(result, ",")
    assert rows[0] == [*FEATURES, "class", *OURS]
    given = [line.split(",") for line in content.decode().splitlines() if line]
    assert [row[:5] for row in rows[1:]] == given
    assert [row[5] for row in rows[1:]] == list(model.predict(MEASUREMENTS))


def test_a_headerless_file_counts_lines_from_its_first(model: Any, tmp_path: Path) -> None:
    lines = ["5,1;3,5;1,4;0,2"] * 40
    lines[6] = "5,1;3,5;x;0,2"  # line 7
    lines[33] = "5,1;3,5"  # line 34
    content = BOM + "".join(line + "\r\n" for line in lines).encode()

    outcome, result, logged = score(model, tmp_path, content, skip=True)

    assert outcome.dialect == Dialect(";", ",", "\r\n", True)
    assert [(line, column) for line, column, _, _ in logged] == [("7", "petal_length"), ("34", "")]
    assert result.startswith(BOM + b"sepal_length;sepal_width;petal_length;petal_width;species;")
    assert len(records(result, ";")) == 1 + 38
    (tmp_path / "in.csv").write_bytes(content.replace(b"5,1;3,5;1,4", b"0;3,5;1,4", 1))
    with pytest.raises(BatchRejectedError, match="line 1, column 'sepal_length'"):
        BatchScorer(model, "3", False, lambda rows: None).score(
            tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "err.csv"
        )


SKLEARN_IRIS_CSV = (resources.files("sklearn.datasets") / "data" / "iris.csv").read_bytes()


@pytest.mark.parametrize(
    "content",
    [
        SKLEARN_IRIS_CSV,  # `150,4,setosa,versicolor,virginica`, then the rows
        b"1,5.1,3.5,1.4,0.2,Iris-setosa\n2,4.9,3.0,1.4,0.2,Iris-setosa\n",  # Kaggle's, no header
        b"5.1,3.5,1.4,0.2,setosa,big\n",  # six columns
        b"5.1;3.5;1.4\n",  # three
    ],
)
def test_any_other_file_without_header_is_refused_saying_so(tmp_path: Path, content: bytes) -> None:
    inspector = CsvInspector(max_bytes=10**9, max_rows=10**9)
    with pytest.raises(UploadRefusedError) as refused:
        inspector.feed(content)  # refused as soon as the first line is in
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    with pytest.raises(CsvRejectedError) as rejected:
        read_header(source)

    assert refused.value.status == 422
    assert refused.value.detail == str(rejected.value)
    assert refused.value.detail.startswith("the header line is missing: the first line holds data")
    assert "sepal_length" in refused.value.detail
    assert "missing required column" not in refused.value.detail
