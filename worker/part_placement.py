"""Where a part's result rows go: on this machine's disk, straight into the result at their
offset; elsewhere, or when a part before is still being scored, into a file of their own
that the last task copies into place.

Writing the rows once matters: copying 600 MB of parts into the result took 1.9 s of a
7.5 s 10M-row batch on 2 processes (benchmarks/batch.py), page-cache writes the kernel
throttles right after the parts wrote as much. A part's offset is the header's size plus
the sizes of the parts before it, each known once that part is scored (parts are queued
in order, so the one before is nearly always done or about to be: a part waits for it a
moment, never long, then falls back on its own file). A part written twice (a second
delivery) writes the same bytes at the same offset: its rows depend only on the input and
the model version. The result appears, whole, by a rename once every part is in.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

from irisq.batches import RESULT, BatchFiles
from worker.part_ledger import Plan

ASSEMBLING = "result.csv.assembling"
# Longest a part waits for the parts before it to be sized, as a share of its own scoring.
PATIENCE = 0.5


def part_file(index: int) -> str:
    return f"part-{index:05d}.csv"


def part_errors_file(index: int) -> str:
    return f"part-{index:05d}.errors.csv"


def place(files: BatchFiles, index: int, rows: memoryview, offset: int | None) -> bool:
    """Write part `index`'s result rows: at `offset` of the result being assembled when it is
    known and the storage is this machine's disk (True), else to the part's own file."""
    target = files.storage.local_path(files.job_id, ASSEMBLING)
    if target is not None and offset is not None:
        _write_at(target, offset, rows)
        return True
    with files.writing(part_file(index)) as handle:
        handle.write(rows)
    return False


def local_assembly(files: BatchFiles) -> bool:
    return files.storage.local_path(files.job_id, ASSEMBLING) is not None


def put_together(
    files: BatchFiles, plan: Plan, outcomes: dict[int, dict[str, Any]], head: bytes
) -> None:
    """The result file from the header and every part's rows, in order."""
    target = files.storage.local_path(files.job_id, ASSEMBLING)
    if target is None:  # object storage: one upload, the parts read in order
        concatenate(files, RESULT, [part_file(p.index) for p in plan.parts], head)
        return
    _write_at(target, 0, head)
    offset = len(head)
    with target.open("r+b") as out:
        for part in plan.parts:
            outcome = outcomes[part.index]
            if not outcome["placed"]:
                with files.reader(part_file(part.index)) as handle:
                    _copy_at(handle, out, offset)
            offset += int(outcome["bytes"])
        out.truncate(offset)
    result = files.storage.local_path(files.job_id, RESULT)
    assert result is not None
    target.replace(result)  # visible only now, whole


def concatenate(files: BatchFiles, name: str, parts: list[str], head: bytes) -> None:
    """`name` written as `head`, then each of `parts` in order."""
    with files.writing(name) as out:
        out.write(head)
        for part in parts:
            with files.reader(part) as handle:
                shutil.copyfileobj(handle, out, 1 << 20)


def _write_at(path: Path, offset: int, data: bytes | memoryview) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.pwrite(descriptor, view, offset)
            view, offset = view[written:], offset + written
    finally:
        os.close(descriptor)


def _copy_at(source: Any, target: io.BufferedRandom, offset: int) -> None:
    """Copy a whole file to `offset` of `target`, in the kernel."""
    while copied := os.copy_file_range(source.fileno(), target.fileno(), 64 << 20, None, offset):
        offset += copied
