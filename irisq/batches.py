"""The files of one batch job, in the batch storage (irisq.batch_storage).

A job id becomes part of a path or a key only once it is known to be a UUID (irisq.ids): an
id read back from the queue is not trusted to stay inside the storage.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO

from irisq.batch_storage import BatchStorage, UnsafeJobIdError, checked

__all__ = ["BatchFiles", "UnsafeJobIdError"]

INPUT = "input.csv"
RESULT = "result.csv"
ERRORS = "errors.csv"
RESULT_JSON = "result.json"  # a prediction's result, when too large for its record


class BatchFiles:
    """The upload, the result and skipped rows of a batch, or a large prediction result."""

    def __init__(self, storage: BatchStorage, job_id: str) -> None:
        checked(job_id, INPUT)
        self.storage = storage
        self.job_id = job_id

    def reader(self, name: str) -> BinaryIO:
        return self.storage.reader(self.job_id, name)

    def writing(self, name: str) -> AbstractContextManager[BinaryIO]:
        return self.storage.writing(self.job_id, name)

    def read_range(self, name: str, start: int, stop: int) -> bytes:
        return self.storage.read_range(self.job_id, name, start, stop)

    def remove(self, name: str) -> None:
        self.storage.remove(self.job_id, name)

    def file_size(self, name: str) -> int | None:
        return self.storage.file_size(self.job_id, name)

    def size(self) -> int:
        return self.storage.size(self.job_id)

    def delete(self) -> None:
        self.storage.delete(self.job_id)
