"""A large batch cut into parts that every predict process scores at once.

The batch task reads the upload once to find where its records end (a quoted cell may hold
a line break: only a reader from the start can tell) and cuts it into parts of about
IRISQ_BATCH_PART_BYTES, each a byte range and the line it starts on. It records that plan
in Redis (worker.part_ledger) and queues one part per live predict process; each part, once
scored, queues the next. A part is scored by the code that scores a whole file, its lines
numbered from its first, into files of its own; whoever records the last part's outcome
writes the result: the header, then each part's rows in order, byte for byte what one
process writes.

Not a Celery chord: a chord needs a result backend (irisq has none: job records are its
state) and queues every part at once, so a prediction sent during a large batch would wait
behind all of it; here it waits behind at most one part per process.

The guarantees of a batch scored whole hold part by part:
- progress: each part records the rows it has read; the job's progress is their sum.
- cancel: each part looks at the job between blocks; the last to stop removes the files.
- a worker killed mid-part: its task goes back to the queue (acks_late, reject on worker
  lost) and the part is scored again (up to IRISQ_MAX_ATTEMPTS times); an outcome is kept
  once. The reconciler counts a part's task as its batch's, and a batch none of whose
  parts is anywhere gets its batch task again, which queues the parts with no outcome.
- one model version: the batch task resolves the champion once; every part loads that one.
- memory: a part is read whole: at most IRISQ_BATCH_PART_BYTES, plus a block.
- the first bad row: without on_invalid=skip, the part holding it fails the job with the
  message one process would give; parts after it stop at their next block.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from irisq.batches import ERRORS, INPUT, RESULT, BatchFiles
from irisq.csv_rules import Header
from worker.batch import ERROR_COLUMNS, BatchScorer, summary
from worker.csv_reading import (
    MAX_OPEN_RECORD,
    BatchOutcome,
    open_source,
    read_header,
    record_starts,
)
from worker.csv_writing import ResultWriter, output_names
from worker.errors import ExpectedJobError
from worker.part_ledger import Part, PartLedger, Plan
from worker.part_placement import (
    ASSEMBLING,
    PATIENCE,
    concatenate,
    local_assembly,
    part_errors_file,
    part_file,
    place,
    put_together,
)
from worker.prediction_log import BatchSample

logger = logging.getLogger(__name__)

SCAN_BYTES = 1 << 20  # read a megabyte at a time to find where records end
COUNTS = ("rows_read", "rows_scored", "rows_rejected", "labelled", "correct")


class PartFailedError(ExpectedJobError):
    """A part's error, raised again when the batch is settled: the job shows it as is."""

    def __init__(self, error_type: str, message: str, details: list[dict[str, Any]] | None):
        super().__init__(message)
        self.error_type = error_type
        self.details = details


class PartStoppedError(Exception):
    """The batch failed in an earlier part, or ended: this part stops between blocks."""


def record_end(data: bytes, delimiter: str) -> int:
    """The offset just past the last record of `data` (which starts a record); 0: none ends.

    A line break inside a quoted cell does not end a record; without a quote in `data`
    every line break does (the common file: numbers only).
    """
    if b'"' not in data:
        return data.rfind(b"\n") + 1
    return record_starts(data, delimiter)[1]


def cut_into_parts(
    open_input: Callable[[], Any], header: Header, delimiter: str, part_bytes: int
) -> list[Part]:
    """The file's records after its header (or BOM) in parts of at least `part_bytes`
    (the last one smaller), each cut where a record ends."""
    parts: list[Part] = []
    with open_source(open_input) as handle:
        pending = b""  # read, not yet in a part; it starts at `position`
        if header.present:
            position = len(handle.readline())
        elif (start := handle.read(len(codecs.BOM_UTF8))) == codecs.BOM_UTF8:
            position = len(start)
        else:
            position, pending = 0, start
        line = 2 if header.present else 1
        part_start, part_line = position, line
        while chunk := handle.read(min(SCAN_BYTES, part_bytes)):
            pending += chunk
            cut = record_end(pending, delimiter)
            if cut == 0 and len(pending) > MAX_OPEN_RECORD:
                cut = pending.rfind(b"\n") + 1  # an unclosed quote: cut as the reader does
            if cut == 0:
                continue
            line += pending.count(b"\n", 0, cut)
            position += cut
            pending = pending[cut:]
            if position - part_start >= part_bytes:
                parts.append(Part(len(parts), part_start, position, part_line))
                part_start, part_line = position, line
        end = position + len(pending)
    if end > part_start:
        parts.append(Part(len(parts), part_start, end, part_line))
    return parts


def score_part(
    files: BatchFiles,
    plan: Plan,
    part: Part,
    estimator: Any,
    check: Callable[[int], None],
    ledger: PartLedger,
    sample: BatchSample | None = None,
) -> dict[str, Any]:
    """Score one part, its rows put in place (worker.part_placement); what it found."""
    started = time.perf_counter()
    header, dialect = read_header(lambda: files.reader(INPUT))
    data = files.read_range(INPUT, part.start, part.stop)
    scorer = BatchScorer(estimator, plan.version, plan.skip_invalid, check, sample)
    result = io.BytesIO()  # ~2.5 times the part: its rows plus the four predictions
    with ExitStack() as outputs:
        errors = (
            outputs.enter_context(files.writing(part_errors_file(part.index)))
            if plan.skip_invalid
            else io.BytesIO()
        )
        outcome = scorer.score_records(
            lambda: io.BytesIO(data), header, dialect, result, errors, part.line
        )
    rows = result.getbuffer()
    offset = None
    if local_assembly(files):
        ledger.set_size(part.index, len(rows))
        patience = PATIENCE * (time.perf_counter() - started)
        before = ledger.sizes_before(part.index, patience)
        if before is not None:
            offset = len(_result_head(header, dialect)) + before
    placed = place(files, part.index, rows, offset)
    counts = {name: getattr(outcome, name) for name in COUNTS}
    return {**counts, "counts": outcome.counts, "bytes": len(rows), "placed": placed}


def assemble(files: BatchFiles, plan: Plan, outcomes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The job's result from its parts: the first failed part's error, raised, or the result
    file (and errors file) written from the parts in order, and the summary of them all."""
    failed = [outcomes[i] for i in sorted(outcomes) if "error" in outcomes[i]]
    if failed:
        error = failed[0]["error"]
        raise PartFailedError(error["type"], error["message"], error.get("details"))
    unscored = [i for i in sorted(outcomes) if "counts" not in outcomes[i]]
    if unscored:  # stopped with no error before it, and the job still running: never seen
        raise RuntimeError(f"part {unscored[0] + 1} of the batch was not scored")
    header, dialect = read_header(lambda: files.reader(INPUT))
    if files.file_size(RESULT) is None:  # else an earlier finisher wrote them
        put_together(files, plan, outcomes, _result_head(header, dialect))
        if plan.skip_invalid:
            names = [part_errors_file(p.index) for p in plan.parts]
            concatenate(files, ERRORS, names, _errors_head())
    total = BatchOutcome(dialect=dialect, header=header)
    for outcome in outcomes.values():
        for name in COUNTS:
            setattr(total, name, getattr(total, name) + int(outcome[name]))
        for species, count in outcome["counts"].items():
            total.counts[species] += int(count)
    return summary(total, plan.version, plan.model_source, plan.skip_invalid)


def _result_head(header: Header, dialect: Any) -> bytes:
    head = io.BytesIO()
    ResultWriter(head, dialect).header(output_names(header))
    return head.getvalue()


def _errors_head() -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text).writerow(ERROR_COLUMNS)  # as worker.batch writes it
    return text.getvalue().encode()


def remove_parts(files: BatchFiles, plan: Plan) -> None:
    files.remove(ASSEMBLING)
    for part in plan.parts:
        files.remove(part_file(part.index))
        files.remove(part_errors_file(part.index))
