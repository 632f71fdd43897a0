"""Reading an uploaded CSV in chunks with pyarrow, and checking its cells.

Every cell is read as text, so that measurements go back into the result as written
(`6.30`, `5,1`); pyarrow casts a block's feature columns to float64 at once, and only a
block with a cell it cannot cast (a word, an empty cell) is checked cell by cell, so that
each bad cell can be named by line and column.

One module, past the ~250 lines we aim for: the fast path (a block cast at once) and the
slow one (cell by cell, naming each) must agree on every cell, and are read side by side.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from irisq.csv_rules import Header, check_measurement, read_first_line
from irisq.schema import MAX_CM, SPECIES
from worker.errors import ExpectedJobError

# 2 MB blocks hold ~70,000 rows of four numbers. Measured on 1M rows (2 cores): 1 MB took
# 2.2 s and +71 MB peak, 2 MB 2.0 s and +93 MB, 4 MB 2.4 s and +144 MB, 8 MB 2.4 s and
# +197 MB: bigger chunks buy no speed, only memory (benchmarks/batch.py).
BLOCK_SIZE = 2 << 20
MAX_REPORTED_ERRORS = 20
PROBABILITY_COLUMNS = tuple(f"probability_{species}" for species in SPECIES)
# What is read after the header to tell a `;` file's decimal mark (a few thousand rows).
DECIMAL_SAMPLE = 64 * 1024
# A record (a quoted cell holding line breaks) may go on past its block by this much.
MAX_OPEN_RECORD = 1 << 20
# A quoted cell: its quote opens the cell; `""` inside is a quote. By delimiter.
_QUOTED_CELL = {
    d: re.compile(rb"(?:^|(?<=[\r\n" + re.escape(d.encode()) + rb']))"[^"]*(?:""[^"]*)*"?')
    for d in (",", ";")
}

Progress = Callable[[int], None]
Problem = tuple[int, str, str]  # (row in chunk, column name, message)


class BatchRejectedError(ExpectedJobError, ValueError):
    """The file is refused as a whole; `details` lists the first bad cells."""

    error_type = "invalid_csv"

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = self.errors = errors


@dataclass(frozen=True)
class Dialect:
    """How a file is written; its result is written the same way, so that it opens in the
    same spreadsheet as the file did."""

    delimiter: str  # `,` or `;`
    decimal: str = "."  # the measurements' decimal mark: `,` only in a `;` file
    eol: str = "\n"  # the first line's end: `\n` or `\r\n`
    bom: bool = False  # the file starts with a UTF-8 byte order mark


@dataclass
class BatchOutcome:
    """What scoring a file found; becomes the job's summary."""

    dialect: Dialect
    header: Header
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPECIES, 0))
    labelled: int = 0
    correct: int = 0


@dataclass
class Reading:
    """Where the reader is: the current block's first line and the rows it could not split."""

    first_line: int = 2
    block_malformed: list[int] = field(default_factory=list)  # record indexes in the block
    malformed: list[tuple[int, str]] = field(default_factory=list)
    # The line of each record of the block, when a quoted cell holds a line break (else
    # record i is on line first_line + i).
    record_lines: list[int] | None = None

    def line_of(self, index: int) -> int:
        """The physical line of record `index` of the current block (blank lines are records;
        malformed rows are not, so each one before it shifts it down a record)."""
        record = index
        for skipped in self.block_malformed:
            if skipped <= record:
                record += 1
        return self.record_line(record)

    def record_line(self, record: int) -> int:
        """The line on which record `record` of the block (malformed ones included) starts."""
        if self.record_lines is not None and record < len(self.record_lines):
            return self.record_lines[record]
        return self.first_line + record


# Where a file is read from: a path, or what opens it (a file in the batch storage).
Source = Path | Callable[[], BinaryIO]


def open_source(source: Source) -> BinaryIO:
    return source.open("rb") if isinstance(source, Path) else source()


def read_header(path: Source) -> tuple[Header, Dialect]:
    """The file's header (or, for a file without one, its layout) and how it is written."""
    with open_source(path) as handle:
        first = handle.readline()
    header, delimiter = read_first_line(first.decode("utf-8-sig").rstrip("\r\n"))
    return header, Dialect(
        delimiter,
        decimal_mark(path, header, delimiter),
        "\r\n" if first.endswith(b"\r\n") else "\n",
        first.startswith(codecs.BOM_UTF8),
    )


def decimal_mark(path: Source, header: Header, delimiter: str) -> str:
    """`,` for a `;` file whose measurements are written with decimal commas: the first
    measurement written with a mark decides; with none (whole numbers), `,`, as the
    spreadsheets that write `;` do. A `,` file's mark is `.`."""
    if delimiter == ",":
        return "."
    with open_source(path) as handle:
        if header.present:
            handle.readline()
        # Cut anywhere: a character split at the end is dropped, it decides nothing.
        sample = handle.read(DECIMAL_SAMPLE).decode("utf-8-sig", errors="ignore")
    features = sorted(header.feature_index.values())
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            for cell in (row[i] for i in features if i < len(row)):
                if "," in cell or "." in cell:
                    return "," if "," in cell else "."
    except csv.Error:  # the sample cut a quoted cell, or worse: the rows will say
        pass
    return ","


def _blocks(path: Source, header: bool, part_line: int | None) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) of whole-line blocks of about BLOCK_SIZE after the header
    (from the first line, after a BOM, when the file has no header); for a part of a file
    (worker.batch_parts), its bytes from the first, which is line `part_line`.

    pyarrow's own streaming reader reads ahead without bound when scoring is slower than
    parsing (measured: its pool grew from 26 MB at 1M rows to 57 MB at 3M); cutting the
    blocks here keeps memory flat whatever the file size.
    """
    line = part_line or (2 if header else 1)
    rest = b""
    with open_source(path) as handle:  # read front to back: no seek (storage streams)
        if part_line is not None:
            pass  # no header, no BOM: a part starts with a record
        elif header:
            handle.readline()
        elif (start := handle.read(len(codecs.BOM_UTF8))) != codecs.BOM_UTF8:
            rest = start
        while chunk := handle.read(BLOCK_SIZE):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a block: keep reading
                rest = data
                continue
            yield line, data[:cut]
            line += data.count(b"\n", 0, cut)
            rest = data[cut:]
    if rest:
        yield line, rest


def record_starts(block: bytes, delimiter: str) -> tuple[list[int], int]:
    """The line (counted from 0 in `block`) on which each record starts, and the offset just
    past the last line break outside quotes (`len(block)` when the block ends a record).

    As pyarrow reads: a quote opens a cell only at the cell's start, `""` inside is a quote.
    A regex over every quoted cell is slow, so this is only for blocks where a quoted cell
    holds a line break (pyarrow then finds fewer records than lines).
    """
    spans = [
        m.span()
        for m in _QUOTED_CELL[delimiter].finditer(block)
        if block.find(b"\n", m.start(), m.end()) != -1
    ]
    starts, line, position, end = [0], 0, 0, 0
    for start, stop in [*spans, (len(block), len(block))]:
        while (newline := block.find(b"\n", position, start)) != -1:  # outside quotes
            line += 1
            position = end = newline + 1
            starts.append(line)
        line += block.count(b"\n", start, stop)
        position = stop
    if end == len(block):
        starts.pop()  # nothing after the last line break
    return starts, end


def read_batches(
    path: Source, header: Header, delimiter: str, reading: Reading, part_line: int | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's records as batches of text cells, one batch a block (`path` a part of the
    file, starting on line `part_line`, when that is given)."""
    names = [f"c{i}" for i in range(len(header.columns))]
    # Text only, none missing: `NA` or `nan` in a measurement column must reach the checks.
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
    )

    def parse(block: bytes) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The block's records, and (record index, why) of those it could not split."""
        skipped: list[tuple[int, str]] = []
        # pyarrow drops a BOM at the start of what it reads (and calls a block of just that
        # an empty file): a blank line before it keeps it as data, as anywhere else.
        lead = 1 if block.startswith(codecs.BOM_UTF8) else 0
        data = b"\n" + block if lead else block

        def on_invalid_row(row: Any) -> str:
            # ignore_empty_lines=False keeps `row.number` a true record count within the block;
            # blank lines arrive as records of empty cells and are dropped later.
            message = f"expected {row.expected_columns} cells, found {row.actual_columns}"
            skipped.append((row.number - 1 - lead, message))
            return "skip"

        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=len(data) + 1, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, ignore_empty_lines=False, invalid_row_handler=on_invalid_row
            ),
            convert_options=convert,
        )
        return table.slice(lead), skipped

    def read(first_line: int, block: bytes, final: bool) -> tuple[pa.Table | None, bytes]:
        """The block's records, and the start of a record left open at its end (a quoted
        cell going on past the block), to read with the next block."""
        table, skipped = parse(block)
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        starts: list[int] | None = None  # None: one record a line
        end = len(block)
        if table.num_rows + len(skipped) != lines:  # some quoted cell holds a line break
            starts, end = record_starts(block, delimiter)
        elif block.endswith(b"\n"):  # else only the last line may open a quote going on
            last = block.rfind(b"\n", 0, -1) + 1
            if record_starts(block[last:], delimiter)[1] == 0:
                end = last
        rest = b""
        # An unclosed quote must not make the reader hold the rest of the file: a record
        # longer than MAX_OPEN_RECORD is cut at the block's end, as pyarrow would.
        if end < len(block) and not final and len(block) - end <= MAX_OPEN_RECORD:
            block, rest = block[:end], block[end:]
            starts = None if starts is None else starts[:-1]
            if not block:
                return None, rest
            table, skipped = parse(block)
        reading.first_line = first_line
        reading.record_lines = None if starts is None else [first_line + s for s in starts]
        reading.block_malformed = [record for record, _ in skipped]
        reading.malformed.extend((reading.record_line(r), message) for r, message in skipped)
        return table, rest

    rest, rest_line = b"", 0
    for first_line, block in _blocks(path, header.present, part_line):
        if rest:
            first_line, block = rest_line, rest + block
        table, rest = read(first_line, block, final=False)
        rest_line = first_line + block.count(b"\n") - rest.count(b"\n")
        if table is not None and table.num_rows:  # one batch per block: indexes are positions
            yield from table.combine_chunks().to_batches()
    if rest:
        table, _ = read(rest_line, rest, final=True)
        if table is not None and table.num_rows:
            yield from table.combine_chunks().to_batches()


def blank_rows(batch: pa.RecordBatch) -> np.ndarray:
    """Rows whose every cell is empty: blank lines, skipped without complaint."""
    blank = np.ones(batch.num_rows, dtype=bool)
    for column in batch.columns:
        blank &= pc.equal(column, "").to_numpy(zero_copy_only=False)
    return blank


def column_values(column: pa.Array, name: str, decimal: str) -> tuple[np.ndarray, list[Problem]]:
    """One feature column (text) as float64, and the cells that are not valid measurements.

    One cast for a block written in the file's decimal mark; a second, commas read as points
    and spaces trimmed, for a block mixing marks; cell by cell only when that fails too.
    """
    problems: list[Problem] = []
    try:
        text = column if decimal == "." else swapped(column, ",", ".")
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        text = pc.utf8_trim_whitespace(pc.replace_substring(column, ",", "."))
        try:
            values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # some cell is not a number: check each cell of this chunk
            values = np.full(len(column), np.nan)
            for i, cell in enumerate(column.to_pylist()):
                value, why = check_measurement(cell)
                if why:
                    problems.append((i, name, why))
                else:
                    values[i] = value
    named = {i for i, _, _ in problems}
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0) & (values <= MAX_CM)))
    for i in (int(i) for i in bad if int(i) not in named):
        why = check_measurement(str(column[i].as_py()))[1]
        problems.append((i, name, why or "not a valid measurement"))
    return values, problems


def swapped(text: pa.Array, old: str, new: str) -> pa.Array:
    """`text` with one ASCII character put for another in every cell (`5,1` → `5.1`).

    The lengths stay, so the offsets do: a pass over the bytes with numpy. Measured on 1M
    cells (2 cores): 14 ms, where pyarrow's replace_substring took 57 ms.
    """
    validity, offsets, data = text.buffers()
    if data is None:
        return text
    raw = np.frombuffer(data, np.uint8).copy()
    raw[raw == ord(old)] = ord(new)
    return pa.StringArray.from_buffers(
        len(text), offsets, pa.py_buffer(raw), validity, text.null_count, text.offset
    )


def label_indexes(labels: pa.Array, codes: bool) -> np.ndarray:
    """Index in SPECIES of each label (`Iris-setosa`, ` Setosa ` → 0; with `codes`,
    scikit-learn's `0`, `1.0`, `2` too), -1 when not a species."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(labels))
    cleaned = pc.replace_substring_regex(lowered, r"^iris[\s_\-.]*", "")
    known = list(SPECIES)
    if codes:
        cleaned = pc.replace_substring_regex(cleaned, r"^\+?0*([0-9]+)(\.0*)?$", r"\1")
        known += [str(code) for code in range(len(SPECIES))]
    indexes = pc.fill_null(pc.index_in(cleaned, value_set=pa.array(known)), -1)
    found = np.asarray(indexes.to_numpy(zero_copy_only=False))
    return np.where(found >= 0, found % len(SPECIES), -1)
