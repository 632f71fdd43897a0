"""Where batch files live: a folder (the default) or S3-compatible object storage.

IRISQ_BATCH_STORAGE_URL picks one: `file:///folder` (unset: IRISQ_BATCH_DIR), what `make run`
uses, or `s3://bucket/prefix` (irisq.s3_storage), which lets the API and predict workers run
on different hosts with nothing shared but the URLs. Both keep a job's files under the job's
id, and both make a file visible only once it is written whole: a reader never sees half a
file, and a write that fails leaves nothing behind.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from irisq.ids import is_job_id
from irisq.settings import Settings

FILE_NAMES = ("input.csv", "result.csv", "errors.csv", "result.json")
# The outputs of one part of a large batch (worker.batch_parts), until they are assembled,
# and, on a local disk, the result as its parts are written into it.
PART_FILE = re.compile(r"part-[0-9]{5}(\.errors)?\.csv|result\.csv\.assembling")


class StorageUnavailableError(Exception):
    """The storage could not be reached or refused the request. The message names the
    storage and the reason, never a credential."""


class StorageRefusedError(StorageUnavailableError):
    """The storage answers but refuses irisq: wrong credentials, a bucket that cannot be
    made. Waiting will not help; the configuration must change."""


class UnsafeJobIdError(ValueError):
    """A job id that is not a UUID was about to become a path or a key."""


def checked(job_id: str, name: str) -> None:
    if not is_job_id(job_id):
        raise UnsafeJobIdError(f"not a job id: {job_id[:80]!r}")
    if name not in FILE_NAMES and not PART_FILE.fullmatch(name):
        raise ValueError(f"not a batch file name: {name!r}")


class BatchStorage(ABC):
    """The files of each job: `<job_id>/<name>`, `name` one of FILE_NAMES or a part's."""

    description: str  # where, for readiness and errors (no credentials)

    @abstractmethod
    def reader(self, job_id: str, name: str) -> BinaryIO:
        """The file, open for reading (FileNotFoundError when there is none)."""

    @abstractmethod
    def writing(self, job_id: str, name: str) -> AbstractContextManager[BinaryIO]:
        """The file, open for writing: in place when the block ends normally, and not at
        all when it raises."""

    @abstractmethod
    def read_range(self, job_id: str, name: str, start: int, stop: int) -> bytes:
        """Bytes `start` to `stop` of the file (fewer where it ends first)."""

    @abstractmethod
    def remove(self, job_id: str, name: str) -> None:
        """Remove one file of the job (none there is fine)."""

    @abstractmethod
    def file_size(self, job_id: str, name: str) -> int | None:
        """Bytes of the file, None when there is none."""

    @abstractmethod
    def size(self, job_id: str) -> int:
        """Bytes of every file of the job (0 when there is none)."""

    @abstractmethod
    def delete(self, job_id: str) -> None:
        """Remove every file of the job (nothing to remove is fine)."""

    @abstractmethod
    def jobs(self) -> Iterator[str]:
        """The ids of the jobs that have files here."""

    @abstractmethod
    def last_written(self, job_id: str) -> float | None:
        """When a file of the job was last written (epoch seconds), None with no file."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailableError unless the storage can be written now."""

    def local_path(self, job_id: str, name: str) -> Path | None:
        """The file on this machine's disk, when it is there (served with sendfile)."""
        return None

    def read_bytes(self, job_id: str, name: str) -> bytes:
        with self.reader(job_id, name) as handle:
            return handle.read()

    def write_bytes(self, job_id: str, name: str, data: bytes) -> None:
        with self.writing(job_id, name) as handle:
            handle.write(data)


class LocalStorage(BatchStorage):
    """`<folder>/<job_id>/<name>`; a file is written as `<name>.<random>.partial`, renamed
    when whole (two deliveries of one task may write the same file at once: each its own)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"the folder {folder}"

    def path(self, job_id: str, name: str) -> Path:
        checked(job_id, name)
        return self.folder / job_id / name

    def reader(self, job_id: str, name: str) -> BinaryIO:
        return self.path(job_id, name).open("rb")

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[BinaryIO]:
        path = self.path(job_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{name}.{secrets.token_hex(4)}.partial")
        try:
            with partial.open("wb") as handle:
                yield handle
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    def read_range(self, job_id: str, name: str, start: int, stop: int) -> bytes:
        with self.path(job_id, name).open("rb") as handle:
            handle.seek(start)
            return handle.read(max(0, stop - start))

    def remove(self, job_id: str, name: str) -> None:
        self.path(job_id, name).unlink(missing_ok=True)

    def file_size(self, job_id: str, name: str) -> int | None:
        try:
            return self.path(job_id, name).stat().st_size
        except FileNotFoundError:
            return None

    def size(self, job_id: str) -> int:
        folder = self.path(job_id, FILE_NAMES[0]).parent
        if not folder.is_dir():
            return 0
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self.path(job_id, FILE_NAMES[0]).parent, ignore_errors=True)

    def jobs(self) -> Iterator[str]:
        if not self.folder.is_dir():
            return
        for folder in self.folder.iterdir():
            if folder.is_dir() and is_job_id(folder.name):  # only job folders are ours
                yield folder.name

    def last_written(self, job_id: str) -> float | None:
        try:
            return self.path(job_id, FILE_NAMES[0]).parent.stat().st_mtime
        except FileNotFoundError:
            return None

    def check(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".irisq-check-{time.monotonic_ns()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailableError(
                f"{self.description} cannot be written: {exc.strerror}"
            ) from None

    def local_path(self, job_id: str, name: str) -> Path | None:
        return self.path(job_id, name)


def open_storage(settings: Settings) -> BatchStorage:
    """The storage IRISQ_BATCH_STORAGE_URL names (unset: the folder IRISQ_BATCH_DIR), one per
    configuration and process: an S3 client holds connections and threads."""
    return _storage(settings.batch_storage_url, settings.s3_endpoint_url, settings.batch_dir)


@lru_cache(maxsize=8)
def _storage(url: str | None, endpoint: str | None, folder: Path) -> BatchStorage:
    if url is None:
        return LocalStorage(folder)
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    from irisq.s3_storage import S3Storage  # pyarrow: only where S3 is used

    return S3Storage.from_url(url, endpoint)
