"""Large prediction results live in files, not in Redis.

A 10,000-row result is about 1.2 MB of JSON; kept in Redis for a week, a few hundred of them
would fill it. Results over IRISQ_INLINE_RESULT_MAX_BYTES are written by the worker beside
the batch files (`<batch_dir>/<job_id>/result.json`, renamed into place when complete) and
counted against their owner's stored bytes; the record only says so, and the API reads the
file when it answers for the job. Expiry removes them with the record (the reconciler).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel

from irisq.batches import BatchFiles
from irisq.job_types import RESULT, JobResult
from irisq.jobs import ResultFile


class ResultFiles:
    def __init__(self, batch_dir: Path, inline_max_bytes: int) -> None:
        self.batch_dir = batch_dir
        self.inline_max_bytes = inline_max_bytes

    def place(self, job_id: str, result: BaseModel) -> str | ResultFile:
        """The result's JSON to store in the record, or the file it was written to."""
        text = result.model_dump_json()
        if len(text) <= self.inline_max_bytes:
            return text
        files = BatchFiles(self.batch_dir, job_id)
        files.folder.mkdir(parents=True, exist_ok=True)
        partial = files.partial(files.result_json)
        partial.write_text(text, encoding="utf-8")
        partial.replace(files.result_json)
        return ResultFile(size=len(text.encode()))

    def read(self, job_id: str) -> JobResult | None:
        """The result written for `job_id`, or None if its file is gone."""
        try:
            text = BatchFiles(self.batch_dir, job_id).result_json.read_bytes()
        except FileNotFoundError:
            return None
        return RESULT.validate_json(text)

    def delete(self, job_id: str) -> None:
        """Remove every file of `job_id`: a batch's upload and outputs, a large result."""
        shutil.rmtree(BatchFiles(self.batch_dir, job_id).folder, ignore_errors=True)
