"""Writing a scored batch as CSV in the input's dialect, from pyarrow arrays.

The result has the input file's delimiter, decimal mark, line ends and BOM, so it opens in
the spreadsheet the file came from; lines are built with pyarrow compute, never row by row
in Python. Text a spreadsheet would run as a formula is defused on the way out.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from irisq.csv_rules import Header, neutralise
from worker.csv_reading import PROBABILITY_COLUMNS, Dialect, swapped

_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?\d+([.,]\d+)?([eE][+-]?\d+)?$"


def output_names(header: Header) -> list[str]:
    """Input columns as given, then ours; ours get an `irisq_` prefix if the name is taken
    (Kaggle's Iris.csv already has `Species`: the prediction must not hide it)."""
    taken = {c.lower() for c in header.columns}
    added = ["species", *PROBABILITY_COLUMNS, "model_version"]
    given = [neutralise(c) for c in header.columns]  # a header cell can carry a formula too
    return [*given, *(f"irisq_{n}" if n in taken else n for n in added)]


class ResultWriter:
    """Writes CSV lines in a file's dialect: its delimiter, line ends and BOM; a cell is
    quoted only when it holds a quote, the delimiter or a line break.

    Lines are joined by pyarrow compute and written straight from the joined array's
    buffer: no per-row Python (pyarrow's CSV writer quotes every text cell and writes LF).
    """

    def __init__(self, handle: IO[bytes], dialect: Dialect) -> None:
        self.handle = handle
        self.dialect = dialect
        self.specials = ('"', "\r", "\n", dialect.delimiter)
        self._raw_specials = tuple(c.encode() for c in self.specials)
        self._pattern = r'["\r\n' + dialect.delimiter + "]"  # RE2, as pyarrow reads it

    def header(self, names: Sequence[str]) -> None:
        line = self.dialect.delimiter.join(map(self.quote, names)) + self.dialect.eol
        self.handle.write((codecs.BOM_UTF8 if self.dialect.bom else b"") + line.encode())

    def quote(self, cell: str) -> str:
        if any(c in cell for c in self.specials):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    def quoted(self, cells: pa.Array) -> pa.Array:
        """The cells, those that need it quoted (looked for only if the column's bytes hold a
        special character at all: most columns never do)."""
        data = cells.buffers()[2]
        raw = b"" if data is None else data.to_pybytes()
        if not any(c in raw for c in self._raw_specials):
            return cells
        needs = pc.match_substring_regex(cells, self._pattern)
        escaped = pc.binary_join_element_wise('"', pc.replace_substring(cells, '"', '""'), '"', "")
        return pc.if_else(needs, escaped, cells)

    def rows(self, columns: Sequence[pa.Array], last: str) -> None:
        """Write one line a row: the columns' cells, then `last` (the same in every row)."""
        cells = [self.quoted(column) for column in columns]
        end = pa.scalar(self.quote(last) + self.dialect.eol)
        lines = pc.binary_join_element_wise(*cells, end, self.dialect.delimiter)
        _, offsets, data = lines.buffers()
        bounds = np.frombuffer(offsets, np.int32, len(lines) + 1, lines.offset * 4)
        self.handle.write(memoryview(data)[bounds[0] : bounds[-1]])


def decimals(values: np.ndarray, mark: str) -> pa.Array:
    """Numbers as text (as pyarrow writes them: `0.973`, `1`), with the file's decimal mark."""
    text = pc.cast(pa.array(values), pa.string())
    return text if mark == "." else swapped(text, ".", mark)


def neutralised(column: pa.Array) -> pa.Array:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe."""
    risky = pc.and_(
        pc.match_substring_regex(column, _FORMULA_START),
        pc.invert(pc.match_substring_regex(column, _PLAIN_NUMBER)),
    )
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
