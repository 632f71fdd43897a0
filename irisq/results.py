"""Large prediction results live in files, not in Redis.

A 10,000-row result is about 1.2 MB of JSON; kept in Redis for a week, a few hundred of them
would fill it. Results over IRISQ_INLINE_RESULT_MAX_BYTES are written by the worker beside
the batch files (`<job_id>/result.json` in the batch storage, visible once whole) and
counted against their owner's stored bytes; the record only says so, and the API reads the
file when it answers for the job. Expiry removes them with the record (the reconciler).
"""

from __future__ import annotations

import re
from typing import get_args

from pydantic import BaseModel, TypeAdapter

from irisq.batch_storage import BatchStorage
from irisq.batches import RESULT_JSON
from irisq.job_types import RESULT, JobResult, Species
from irisq.jobs import ResultFile


class _SpeciesOfRow(BaseModel):
    species: Species


class _SpeciesOfResult(BaseModel):
    predictions: list[_SpeciesOfRow]


# Only what MLflow's protocol answers, still checked (a species outside the three fails).
_SPECIES_ONLY = TypeAdapter(_SpeciesOfResult)
# A worker's result JSON (pydantic's, compact) names a species only as a prediction's
# `"species":"…"`: found by one scan, 10,000 rows in ~2 ms, where validating even this much
# of the result built 10,000 objects (12 ms alone, up to ~180 ms with the collector running
# over a large heap).
_SPECIES_FIELD = re.compile(rb'"species":"([^"\\]*)"')
_KNOWN = {name.encode(): name for name in get_args(Species)}


class ResultFiles:
    def __init__(self, storage: BatchStorage, inline_max_bytes: int) -> None:
        self.storage = storage
        self.inline_max_bytes = inline_max_bytes

    def place(self, job_id: str, text: str) -> str | ResultFile:
        """A result's JSON to store in the record, or the file it was written to."""
        if len(text) <= self.inline_max_bytes:
            return text
        data = text.encode()
        self.storage.write_bytes(job_id, RESULT_JSON, data)
        return ResultFile(size=len(data))

    def read(self, job_id: str) -> JobResult | None:
        """The result written for `job_id`, or None if its file is gone."""
        text = self._text(job_id)
        return None if text is None else RESULT.validate_json(text)

    def species(self, job_id: str, rows: int) -> list[str] | None:
        """Just the species of the `rows` predictions of the result written for `job_id`
        (None: the file is gone). Read by a scan; a file that does not hold exactly `rows`
        known species (it never should) is validated whole, and fails if it is wrong."""
        text = self._text(job_id)
        if text is None:
            return None
        found = _SPECIES_FIELD.findall(text)
        if len(found) == rows and set(found) <= _KNOWN.keys():
            return [_KNOWN[name] for name in found]
        return [row.species for row in _SPECIES_ONLY.validate_json(text).predictions]

    def _text(self, job_id: str) -> bytes | None:
        try:
            return self.storage.read_bytes(job_id, RESULT_JSON)
        except FileNotFoundError:
            return None

    def delete(self, job_id: str) -> None:
        """Remove every file of `job_id`: a batch's upload and outputs, a large result."""
        self.storage.delete(job_id)
