"""Where a job's files live, in the storage directory the API and workers share.

A job id becomes a folder name only once it is known to be a UUID (irisq.ids): an id read
back from the queue is not trusted to stay inside the folder.
"""

from __future__ import annotations

from pathlib import Path

from irisq.ids import is_job_id


class UnsafeJobIdError(ValueError):
    """A job id that is not a UUID was about to become a path."""


class BatchFiles:
    """`<batch_dir>/<job_id>/`: the upload, the result and skipped rows, or a large result."""

    def __init__(self, batch_dir: Path, job_id: str) -> None:
        if not is_job_id(job_id):
            raise UnsafeJobIdError(f"not a job id: {job_id[:80]!r}")
        self.folder = batch_dir / job_id
        self.input = self.folder / "input.csv"
        self.result = self.folder / "result.csv"
        self.errors = self.folder / "errors.csv"
        self.result_json = self.folder / "result.json"  # a prediction's, when too large

    def partial(self, path: Path) -> Path:
        """Written first, renamed when complete: a reader never sees half a file."""
        return path.with_name(path.name + ".partial")

    def size(self) -> int:
        """Bytes of every file in the folder (0 when there is none)."""
        if not self.folder.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())
