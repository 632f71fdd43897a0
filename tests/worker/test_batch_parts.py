"""A file scored in parts gives, byte for byte, what it gives scored whole: cut where records
end (quoted line breaks too), lines numbered from each part's first, outputs put together
in order. The parts' tasks, progress, cancel and killed workers: tests/api/test_batch_parts.py.
"""

from __future__ import annotations

import io
import itertools
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from irisq.batch_storage import LocalStorage
from irisq.batches import ERRORS, INPUT, RESULT, BatchFiles
from worker import csv_reading
from worker.batch import BatchScorer, summary
from worker.batch_parts import assemble, cut_into_parts, remove_parts, score_part
from worker.csv_reading import BatchRejectedError, read_header
from worker.part_ledger import PartLedger, Plan

GOOD = ["5.1,3.5,1.4,0.2", "6.3,3.3,6.0,2.5", "5.9,3.0,4.2,1.5", "7.7,2.6,6.9,2.3"]


@pytest.fixture(autouse=True)
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reading, "BLOCK_SIZE", 64)  # a handful of lines per block


def _messy_lines(count: int, seed: int) -> list[str]:
    """Good rows with, here and there, what a real upload holds: quoted notes with line
    breaks and quotes, bad cells, short rows, blank lines, formulas."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        row = rng.choice(GOOD)
        pick = rng.random()
        if pick < 0.05:
            lines.append(f'{row},"a note\nover ""two"" lines"')
        elif pick < 0.08:
            lines.append(f"{row},=cmd()")
        elif pick < 0.10:
            lines.append("5.1,abc,1.4,0.2,x")
        elif pick < 0.12:
            lines.append("5.1,3.5")
        elif pick < 0.14:
            lines.append("")
        else:
            lines.append(f"{row},row {i}")
    return lines


class ElsewhereStorage(LocalStorage):
    """A storage not on this machine's disk, as object storage is: parts go to files."""

    def local_path(self, job_id: str, name: str) -> Path | None:
        return None


def _files(tmp_path: Path, text: str | bytes, elsewhere: bool = False) -> BatchFiles:
    storage = ElsewhereStorage(tmp_path) if elsewhere else LocalStorage(tmp_path)
    files = BatchFiles(storage, str(uuid.uuid4()))
    data = text.encode() if isinstance(text, str) else text
    files.storage.write_bytes(files.job_id, INPUT, data)
    return files


def _whole(model: Any, files: BatchFiles, skip: bool) -> tuple[bytes, bytes, dict[str, Any]]:
    result, errors = io.BytesIO(), io.BytesIO()
    scorer = BatchScorer(model, "7", skip, lambda rows: None)
    outcome = scorer.score(lambda: files.reader(INPUT), result, errors)
    return result.getvalue(), errors.getvalue(), summary(outcome, "7", "registry", skip)


def _in_parts(
    model: Any,
    files: BatchFiles,
    skip: bool,
    part_bytes: int,
    redis_client: redis.Redis,
    reverse: bool = False,
) -> tuple[bytes, bytes, dict[str, Any], int]:
    """Cut, score each part (last first with `reverse`: no part finds the ones before it
    sized, so each but the first goes to its own file), put together."""
    header, dialect = read_header(lambda: files.reader(INPUT))
    parts = cut_into_parts(lambda: files.reader(INPUT), header, dialect.delimiter, part_bytes)
    plan = Plan("7", "registry", skip, 0, 0.0, tuple(parts))
    ledger = PartLedger(redis_client, files.job_id, 60)
    outcomes = {
        p.index: score_part(files, plan, p, model, lambda rows: None, ledger)
        for p in (reversed(parts) if reverse else parts)
    }
    ledger.forget()
    placed = [outcomes[p.index]["placed"] for p in parts]
    local = files.storage.local_path(files.job_id, INPUT) is not None
    assert placed == [local and (not reverse or p.index == 0) for p in parts]
    found = assemble(files, plan, outcomes)
    remove_parts(files, plan)
    errors = files.storage.read_bytes(files.job_id, ERRORS) if skip else b""
    return files.storage.read_bytes(files.job_id, RESULT), errors, found, len(parts)


@pytest.mark.parametrize(
    ("part_bytes", "reverse", "elsewhere"),
    [(4096, False, False), (5000, True, False), (6500, False, True), (4096, True, True)],
)
def test_parts_put_together_are_the_file_scored_whole(
    model: Any,
    tmp_path: Path,
    redis_client: redis.Redis,
    part_bytes: int,
    reverse: bool,
    elsewhere: bool,
) -> None:
    text = "sepal_length,sepal_width,petal_length,petal_width,note\n"
    text += "".join(line + "\n" for line in _messy_lines(900, seed=part_bytes))
    files = _files(tmp_path, text, elsewhere)

    whole = _whole(model, files, skip=True)
    result, errors, found, count = _in_parts(model, files, True, part_bytes, redis_client, reverse)

    assert count >= 3
    assert result == whole[0]
    assert errors == whole[1]
    assert b"over" in result
    assert b"abc" in errors
    assert found == whole[2]
    assert sorted(p.name for p in (tmp_path / files.job_id).iterdir()) == [
        "errors.csv",
        "input.csv",
        "result.csv",
    ]


def test_a_spreadsheet_file_in_parts_keeps_its_dialect(
    model: Any, tmp_path: Path, redis_client: redis.Redis
) -> None:
    lines = [line.replace(",", ";").replace(".", ",") for line in _messy_lines(700, seed=3)]
    text = "\ufeffsepal_length;sepal_width;petal_length;petal_width;note\r\n"
    files = _files(tmp_path, text + "".join(line + "\r\n" for line in lines))

    whole = _whole(model, files, skip=True)
    result, errors, found, count = _in_parts(model, files, True, 4096, redis_client, True)

    assert count >= 3
    assert (result, errors, found) == whole
    assert found["decimal_mark"] == ","
    assert found["line_ending"] == "CRLF"
    assert found["bom"]


def test_a_file_without_header_in_parts(
    model: Any, tmp_path: Path, redis_client: redis.Redis
) -> None:
    text = "".join(f"{row},Iris-setosa\n" for row in GOOD * 400)
    files = _files(tmp_path, b"\xef\xbb\xbf" + text.encode())

    whole = _whole(model, files, skip=False)
    result, _, found, count = _in_parts(model, files, False, 4096, redis_client)

    assert count >= 3
    assert (result, found) == (whole[0], whole[2])
    assert found["header"] is False
    assert found["labelled_rows"] == 1600


def test_the_first_bad_row_of_a_later_part_refuses_the_file_as_whole_scoring_does(
    model: Any, tmp_path: Path, redis_client: redis.Redis
) -> None:
    lines = [f"{GOOD[0]},ok"] * 1200
    lines[1000] = "5.1,3.5,0,0.2,zero"  # line 1002, in the third part or later
    lines[1100] = "5.1,x,1.4,0.2,word"
    text = "sepal_length,sepal_width,petal_length,petal_width,note\n"
    files = _files(tmp_path, text + "".join(line + "\n" for line in lines))

    with pytest.raises(BatchRejectedError) as whole:
        _whole(model, files, skip=False)
    with pytest.raises(BatchRejectedError) as parts:
        _in_parts(model, files, False, 4096, redis_client)

    assert str(parts.value) == str(whole.value)
    assert "line 1002, column 'petal_length'" in str(parts.value)


def test_parts_are_cut_where_records_end(model: Any, tmp_path: Path) -> None:
    quoted = '5.1,3.5,1.4,0.2,"' + "long\n" * 2000 + '"\n'  # 10 kB, one record
    text = "sepal_length,sepal_width,petal_length,petal_width,note\n"
    text += "".join(f"{GOOD[1]},r\n" for _ in range(300)) + quoted + f"{GOOD[2]},last\n"
    files = _files(tmp_path, text)
    header, _dialect = read_header(lambda: files.reader(INPUT))

    parts = cut_into_parts(lambda: files.reader(INPUT), header, ",", 4096)

    data = text.encode()
    assert parts[0].start == len(data.split(b"\n")[0]) + 1
    assert parts[-1].stop == len(data)
    assert all(a.stop == b.start for a, b in itertools.pairwise(parts))
    for part in parts:  # each starts a record: right after a line break outside quotes
        before = data[: part.start]
        assert before.endswith(b"\n")
        assert before.count(b'"') % 2 == 0
        assert part.line == before.count(b"\n") + 1
