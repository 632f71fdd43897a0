"""Scoring a whole CSV file in chunks: bounded memory, one `predict_proba` per chunk."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from irisq.batches import ERRORS, INPUT, RESULT, BatchFiles
from irisq.csv_rules import Header, neutralise
from irisq.schema import FEATURES, SPECIES
from worker.csv_reading import (
    MAX_REPORTED_ERRORS,
    BatchOutcome,
    BatchRejectedError,
    Dialect,
    Problem,
    Progress,
    Reading,
    Source,
    blank_rows,
    column_values,
    label_indexes,
    read_batches,
    read_header,
)
from worker.csv_writing import ResultWriter, decimals, neutralised, output_names
from worker.inference import ModelCache
from worker.prediction_log import BatchSample
from worker.scored import species_columns

SPECIES_ARRAY = pa.array(SPECIES)
ERROR_COLUMNS = ("line", "column", "value", "message")


class BatchScorer:
    """Scores one input file into a result CSV and, for skipped rows, an errors CSV."""

    def __init__(
        self,
        estimator: Any,
        version: str,
        skip_invalid: bool,
        progress: Progress,
        sample: BatchSample | None = None,
    ) -> None:
        self.estimator = estimator
        self.sample = sample  # rows kept for the prediction log
        # Probability columns in SPECIES order, whatever order the model's classes_ are in.
        self.order = species_columns(estimator)
        self.version = version
        self.skip_invalid = skip_invalid
        self.progress = progress

    def score(
        self, source: Source, result: Path | BinaryIO, errors: Path | BinaryIO
    ) -> BatchOutcome:
        """One pass over the file: the result in the file's dialect, the errors as CSV."""
        header, dialect = read_header(source)
        return self.score_records(source, header, dialect, result, errors)

    def score_records(
        self,
        source: Source,
        header: Header,
        dialect: Dialect,
        result: Path | BinaryIO,
        errors: Path | BinaryIO,
        part_line: int | None = None,
    ) -> BatchOutcome:
        """Score the records of `source`, a file with `header` written in `dialect`, or,
        with `part_line`, a part of one that starts on that line: its outputs then have no
        header lines, to be put together with the other parts' (worker.batch_parts)."""
        outcome = BatchOutcome(dialect=dialect, header=header)
        reading = Reading()
        with ExitStack() as files:
            result_file = result.open("wb") if isinstance(result, Path) else result
            error_bytes = errors.open("wb") if isinstance(errors, Path) else errors
            if isinstance(result, Path):
                files.enter_context(result_file)
            if isinstance(errors, Path):
                files.enter_context(error_bytes)
            # Detached at the end, not closed: the caller closes what it opened.
            error_file = io.TextIOWrapper(error_bytes, encoding="utf-8", newline="")
            files.callback(error_file.detach)
            files.callback(error_file.flush)
            writer = ResultWriter(result_file, dialect)
            error_log = csv.writer(error_file)
            if part_line is None:
                writer.header(output_names(header))
                error_log.writerow(ERROR_COLUMNS)
            for batch in read_batches(source, header, dialect.delimiter, reading, part_line):
                output = self._chunk(batch, header, outcome, reading, error_log)
                if output is not None:
                    writer.rows(output, self.version)
                self.progress(outcome.rows_read)
            self._chunk_errors([], reading, outcome, error_log)  # malformed rows at the end
        return outcome

    def _chunk(
        self,
        batch: pa.RecordBatch,
        header: Header,
        outcome: BatchOutcome,
        reading: Reading,
        error_log: Any,
    ) -> list[pa.Array] | None:
        """Validate and score one chunk; its output columns, or None when no row is left."""
        positions = np.flatnonzero(~blank_rows(batch))  # chunk index of each real row
        if len(positions) < batch.num_rows:
            batch = batch.take(pa.array(positions))
        outcome.rows_read += batch.num_rows
        matrix = np.empty((batch.num_rows, len(FEATURES)), dtype=np.float64)
        problems: list[Problem] = []
        for j, feature in enumerate(FEATURES):
            index = header.feature_index[feature]
            matrix[:, j], found = column_values(
                batch.column(index), header.columns[index], outcome.dialect.decimal
            )
            problems.extend(found)
        cells = [
            {
                "line": reading.line_of(int(positions[row])),
                "column": column,
                "value": str(batch.column(header.columns.index(column))[row].as_py())[:40],
                "message": message,
            }
            for row, column, message in problems
        ]
        self._chunk_errors(cells, reading, outcome, error_log)
        if problems:
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[[row for row, _, _ in problems]] = False
            outcome.rows_rejected += int((~keep).sum())
            batch, matrix = batch.filter(pa.array(keep)), matrix[keep]
        if batch.num_rows == 0:
            return None
        return self._scored(batch, header, matrix, outcome)

    def _chunk_errors(
        self,
        cells: list[dict[str, Any]],
        reading: Reading,
        outcome: BatchOutcome,
        error_log: Any,
    ) -> None:
        """Refuse the file on the first errors, or log them (bad cells and malformed rows)."""
        rows = [
            {"line": n, "column": None, "value": None, "message": m} for n, m in reading.malformed
        ]
        outcome.rows_read += len(rows)
        outcome.rows_rejected += len(rows)
        reading.malformed.clear()
        found = sorted(cells + rows, key=lambda e: (e["line"], e["column"] or ""))
        if not found:
            return
        if not self.skip_invalid:
            first = found[0]
            where = f"line {first['line']}" + (
                f", column {first['column']!r}" if first["column"] else ""
            )
            raise BatchRejectedError(
                f"the file was refused: {where}: {first['message']} (send on_invalid=skip to "
                "score the valid rows and list the others)",
                found[:MAX_REPORTED_ERRORS],
            )
        for error in found:
            error_log.writerow(
                [
                    error["line"],
                    neutralise(error["column"] or ""),
                    neutralise(error["value"] or ""),
                    neutralise(error["message"]),  # it may quote the cell
                ]
            )

    def _scored(
        self, batch: pa.RecordBatch, header: Header, matrix: np.ndarray, outcome: BatchOutcome
    ) -> list[pa.Array]:
        """The output columns but the model version: the input's cells (measurements as
        written, other text defused), the species and its probabilities."""
        probabilities = self.estimator.predict_proba(matrix)[:, self.order]
        best = probabilities.argmax(axis=1)
        features = set(header.feature_index.values())
        columns: list[pa.Array] = [
            batch.column(i) if i in features else neutralised(batch.column(i))
            for i in range(len(header.columns))
        ]
        # Arrow takes straight from the index arrays: no per-row Python or numpy strings.
        columns.append(pc.take(SPECIES_ARRAY, pa.array(best)))
        by_species = np.round(probabilities, 6).T.copy()  # one contiguous row a species
        if self.sample is not None:
            self.sample.take(matrix, best, by_species.T)
        columns.extend(decimals(p, outcome.dialect.decimal) for p in by_species)
        for k, count in enumerate(np.bincount(best, minlength=len(SPECIES))):
            outcome.counts[SPECIES[k]] += int(count)
        outcome.rows_scored += len(matrix)
        if header.label_index is not None:
            truth = label_indexes(batch.column(header.label_index), header.label_codes)
            known = truth >= 0
            outcome.labelled += int(known.sum())
            outcome.correct += int((truth[known] == best[known]).sum())
        return columns


def score_batch(
    files: BatchFiles,
    cache: ModelCache,
    skip_invalid: bool,
    rows_total: int,
    report: Callable[[float], None],
    sample: BatchSample | None = None,
) -> dict[str, Any]:
    """Score an uploaded file with one model version; the job's summary.

    The champion is resolved once, so the whole file is scored by the same version even if
    the alias moves meanwhile. Outputs appear in the storage only once written whole; a
    refused file leaves no result behind, and without on_invalid=skip no errors file.
    """
    version, estimator = cache.get()
    scorer = BatchScorer(
        estimator, version, skip_invalid, lambda rows: report(rows / max(rows_total, 1)), sample
    )
    with ExitStack() as outputs:
        result = outputs.enter_context(files.writing(RESULT))
        errors = outputs.enter_context(files.writing(ERRORS)) if skip_invalid else io.BytesIO()
        outcome = scorer.score(lambda: files.reader(INPUT), result, errors)
    return summary(outcome, version, cache.source, skip_invalid)


def summary(outcome: BatchOutcome, version: str, source: str, skip_invalid: bool) -> dict[str, Any]:
    """The job's result: what scoring found, and how the file was written."""
    header, dialect = outcome.header, outcome.dialect
    label = None if header.label_index is None else header.columns[header.label_index]
    return {
        "model_version": version,
        "model_source": source,
        "rows_read": outcome.rows_read,
        "rows_scored": outcome.rows_scored,
        "rows_rejected": outcome.rows_rejected,
        "counts": outcome.counts,
        "label_column": label,
        "labelled_rows": outcome.labelled,
        "accuracy": round(outcome.correct / outcome.labelled, 6) if outcome.labelled else None,
        "delimiter": dialect.delimiter,
        "columns": {f: header.columns[i] for f, i in header.feature_index.items()},
        "on_invalid": "skip" if skip_invalid else "reject",
        "decimal_mark": dialect.decimal,
        "line_ending": "CRLF" if dialect.eol == "\r\n" else "LF",
        "bom": dialect.bom,
        "header": header.present,
    }
