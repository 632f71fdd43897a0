"""Where a batch job's files live, in the storage directory the API and workers share."""

from __future__ import annotations

from pathlib import Path


class BatchFiles:
    """`<batch_dir>/<job_id>/`: the upload, the result, and the rows that were skipped."""

    def __init__(self, batch_dir: Path, job_id: str) -> None:
        self.folder = batch_dir / job_id
        self.input = self.folder / "input.csv"
        self.result = self.folder / "result.csv"
        self.errors = self.folder / "errors.csv"

    def partial(self, path: Path) -> Path:
        """Written first, renamed when complete: a reader never sees half a file."""
        return path.with_name(path.name + ".partial")
