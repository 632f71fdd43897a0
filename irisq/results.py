"""Large prediction results live in files, not in Redis.

A 10,000-row result is about 1.2 MB of JSON; kept in Redis for a week, a few hundred of them
would fill it. Results over IRISQ_INLINE_RESULT_MAX_BYTES are written by the worker beside
the batch files (`<batch_dir>/<job_id>/result.json`, renamed into place when complete) and
counted against their owner's stored bytes; the record only says so, and the API reads the
file when it answers for the job. Expiry removes them with the record (the reconciler).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from irisq.batches import BatchFiles
from irisq.jobs import ResultFile


class ResultFiles:
    def __init__(self, batch_dir: Path, inline_max_bytes: int) -> None:
        self.batch_dir = batch_dir
        self.inline_max_bytes = inline_max_bytes

    def place(self, job_id: str, result: dict[str, Any]) -> dict[str, Any] | ResultFile:
        """The result to store in the record, or the file it was written to."""
        text = json.dumps(result)
        if len(text) <= self.inline_max_bytes:
            return result
        files = BatchFiles(self.batch_dir, job_id)
        files.folder.mkdir(parents=True, exist_ok=True)
        partial = files.partial(files.result_json)
        partial.write_text(text, encoding="utf-8")
        partial.replace(files.result_json)
        return ResultFile(size=len(text.encode()))

    def read(self, job_id: str) -> dict[str, Any] | None:
        """The result written for `job_id`, or None if its file is gone."""
        try:
            text = BatchFiles(self.batch_dir, job_id).result_json.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        result: dict[str, Any] = json.loads(text)
        return result
