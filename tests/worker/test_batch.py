"""The batch scorer on its own: exact line numbers across blocks, memory-shaped reading."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import pytest

from irisq.batch_storage import LocalStorage
from worker import csv_reading
from worker.batch import BatchScorer
from worker.csv_reading import BatchRejectedError

HEADER = "sepal_length;sepal_width;petal_length;petal_width;note\n"


@pytest.fixture(autouse=True)
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reading, "BLOCK_SIZE", 64)  # a handful of lines per block


class Files:
    """A job's files in a local batch storage, by path."""

    def __init__(self, tmp_path: Path) -> None:
        storage, job_id = LocalStorage(tmp_path), str(uuid.uuid4())
        self.input = storage.path(job_id, "input.csv")
        self.result = storage.path(job_id, "result.csv")
        self.errors = storage.path(job_id, "errors.csv")
        self.input.parent.mkdir()


def _file(tmp_path: Path, lines: list[str]) -> Files:
    files = Files(tmp_path)
    files.input.write_text(HEADER + "".join(line + "\n" for line in lines))
    return files


def _score(model: Any, files: Files, skip: bool) -> Any:
    return BatchScorer(model, "9", skip, lambda rows: None).score(
        files.input, files.result, files.errors
    )


def test_line_numbers_stay_exact_across_blocks_blank_lines_and_bad_rows(
    model: Any, tmp_path: Path
) -> None:
    good = "5,1;3,5;1,4;0,2;ok"
    lines = [good] * 30
    lines[9] = ""  # line 11: blank, ignored
    lines[14] = "5,1;3,5;1,4"  # line 16: too few cells
    lines[19] = "5,1;x;1,4;0,2;bad"  # line 21
    lines[28] = "5,1;3,5;1,4;0,2;=cmd()"  # line 30: a formula to defuse
    files = _file(tmp_path, lines)

    outcome = _score(model, files, skip=True)

    assert (outcome.rows_read, outcome.rows_scored, outcome.rows_rejected) == (29, 27, 2)
    errors = list(csv.DictReader(files.errors.read_text().splitlines()))
    assert [(e["line"], e["column"]) for e in errors] == [("16", ""), ("21", "sepal_width")]
    result = csv.DictReader(files.result.read_text().splitlines(), delimiter=";")
    notes = [row["note"] for row in result]
    assert len(notes) == 27
    assert notes[-2] == "'=cmd()"


def test_reject_names_the_first_bad_line_even_in_a_late_block(model: Any, tmp_path: Path) -> None:
    lines = ["6,3;3,3;6,0;2,5;x"] * 40
    lines[33] = "6,3;3,3;0;2,5;x"  # line 35: petal length 0
    files = _file(tmp_path, lines)

    with pytest.raises(BatchRejectedError) as refused:
        _score(model, files, skip=False)

    assert refused.value.errors[0]["line"] == 35
    assert refused.value.errors[0]["column"] == "petal_length"
    assert "line 35, column 'petal_length'" in str(refused.value)


def test_formulas_in_skipped_cells_and_headers_are_defused(model: Any, tmp_path: Path) -> None:
    files = Files(tmp_path)
    files.input.write_text(
        "sepal_length,sepal_width,petal_length,petal_width,=HEADER()\n"
        "5.1,=cmd(),1.4,0.2,x\n5.1,3.5,1.4,0.2,y\n"
    )

    _score(model, files, skip=True)

    errors = list(csv.DictReader(files.errors.read_text().splitlines()))
    assert errors[0]["value"] == "'=cmd()"
    assert (
        files.result.read_text()
        .splitlines()[0]
        .startswith("sepal_length,sepal_width,petal_length,petal_width,'=HEADER(),species,")
    )
