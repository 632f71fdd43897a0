"""Batch files in S3-compatible object storage, through pyarrow's S3 filesystem.

Why pyarrow.fs: the workers already read CSV with pyarrow, and its S3 client (the AWS C++ SDK)
streams both ways in native code, off the GIL: uploads go out as multipart uploads whose
parts are sent in the background while the next part fills, and the workers read the input
with ranged reads of one block at a time. boto3 would add a second, pure-Python stack for
the same requests; obstore has no file object pyarrow's readers take.

An object appears only when its upload completes (S3 semantics): a reader never sees half a
file. A write that fails is deleted (its upload may have completed as the stream closed). An
upload abandoned by a process that died is never visible; a bucket lifecycle rule
(AbortIncompleteMultipartUpload) frees its parts (docs/operations.md, "Batch storage").

Credentials come from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION, ~/.aws, an instance role); they are never logged or put in an error.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from irisq.batch_storage import (
    FILE_NAMES,
    BatchStorage,
    StorageRefusedError,
    StorageUnavailableError,
    checked,
)
from irisq.ids import is_job_id

CONNECT_TIMEOUT_SECONDS = 3.0
# Between bytes of one request (not its whole length): a slow storage fails a request after
# this, and the AWS SDK's standard retries (3 attempts) then decide.
REQUEST_TIMEOUT_SECONDS = 30.0
ERROR_CHARS = 300


# A file is read in ranged GETs of this size, the next one fetched while the caller uses the
# one before (a download streams, a worker scores): two pieces in memory at most.
READ_AHEAD_BYTES = 4 * 1024 * 1024
# What readline() and small reads are served from (a header is one request, not one a byte).
READ_BUFFER_BYTES = 256 * 1024


class _ReadAhead(io.RawIOBase):
    """An S3 object read front to back, one GET ahead of its reader (pyarrow's reads release
    the GIL, so the next piece arrives while Python works on this one)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._size = int(native.size())
        self._fetched = 0  # offset of the next piece to ask for
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="irisq-s3-read")
        self._next: Future[bytes] | None = self._fetch()
        self._piece = memoryview(b"")

    def _fetch(self) -> Future[bytes] | None:
        if self._fetched >= self._size:
            return None
        length = min(READ_AHEAD_BYTES, self._size - self._fetched)
        future = self._pool.submit(self._native.read_at, length, self._fetched)
        self._fetched += length
        return future

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._piece:
            if self._next is None:
                return 0
            self._piece = memoryview(self._next.result())  # its OSError, if the GET failed
            self._next = self._fetch()
        count = min(len(buffer), len(self._piece))
        buffer[:count] = self._piece[:count]
        self._piece = self._piece[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._native.close()
            finally:
                super().close()


class _Writer(io.RawIOBase):
    """pyarrow's output stream as a raw Python stream (text wrappers work on it).

    The stream belongs to `S3Storage.writing`, which completes or discards it: closing this
    wrapper (or its garbage collection, in whichever thread drops the last reference, such
    as the thread pool that ran its last write) never touches the stream. One lock orders
    a write still running in a thread before the completion or the discard: pyarrow's
    stream must not be closed while written to."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with self.lock:
            if self.native.closed:
                raise ValueError("write to a finished upload")
            self.native.write(data)
        return len(data)


class S3Storage(BatchStorage):
    """`s3://<bucket>/<prefix>/<job_id>/<name>`."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        self.bucket = bucket
        self.base = "/".join(part for part in (bucket, prefix.strip("/")) if part)
        self.endpoint_url = endpoint_url
        where = f" at {endpoint_url}" if endpoint_url else ""
        self.description = f"the object storage s3://{self.base}{where}"
        self._lock = threading.Lock()
        self._filesystem: pafs.S3FileSystem | None = None
        self._pid = 0

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None) -> S3Storage:
        parts = urlsplit(url)
        return cls(parts.netloc, parts.path, endpoint_url)

    @property
    def fs(self) -> pafs.S3FileSystem:
        """One client per process: a forked worker child makes its own (the SDK's
        connections and threads do not survive a fork)."""
        with self._lock:
            if self._filesystem is None or self._pid != os.getpid():
                self._filesystem = self._connect()
                self._pid = os.getpid()
            return self._filesystem

    def _connect(self) -> pafs.S3FileSystem:
        options: dict[str, object] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "request_timeout": REQUEST_TIMEOUT_SECONDS,
            "allow_bucket_creation": True,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        }
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        if self.endpoint_url:
            endpoint = urlsplit(self.endpoint_url)
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme
            options.setdefault("region", "us-east-1")  # S3-compatible servers ignore it
        return pafs.S3FileSystem(**options)

    def key(self, job_id: str, name: str) -> str:
        checked(job_id, name)
        return f"{self.base}/{job_id}/{name}"

    def _folder(self, job_id: str) -> str:
        checked(job_id, FILE_NAMES[0])  # raises UnsafeJobIdError for anything but a UUID
        return f"{self.base}/{job_id}"

    def unavailable(self, exc: OSError) -> StorageUnavailableError:
        reason = " ".join(str(exc).split())[:ERROR_CHARS]
        if "ACCESS_DENIED" in reason:
            return StorageRefusedError(
                f"{self.description} refused the credentials it was given (ACCESS_DENIED): "
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return StorageUnavailableError(f"{self.description} is unavailable: {reason}")

    def reader(self, job_id: str, name: str) -> BinaryIO:
        key = self.key(job_id, name)
        try:
            # Random access: each read is a ranged GET of what is asked (a block at a time).
            native = self.fs.open_input_file(key)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.unavailable(exc) from None
        try:
            ahead = _ReadAhead(native)
        except OSError as exc:
            native.close()
            raise self.unavailable(exc) from None
        return cast(BinaryIO, io.BufferedReader(ahead, READ_BUFFER_BYTES))

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[BinaryIO]:
        key = self.key(job_id, name)
        try:
            stream = self.fs.open_output_stream(key)
        except OSError as exc:
            raise self.unavailable(exc) from None
        writer = _Writer(stream)
        try:
            # Unbuffered here: pyarrow gathers the parts of the multipart upload itself.
            yield cast(BinaryIO, writer)
        except BaseException:
            self._discard(writer, key)
            raise
        try:
            with writer.lock:
                stream.close()  # completes the multipart upload: the object appears, whole
        except OSError as exc:
            self._discard(writer, key)
            raise self.unavailable(exc) from None

    def _discard(self, writer: _Writer, key: str) -> None:
        """Closing an S3 stream completes its upload (pyarrow has no abort): delete it. When
        the storage is away, the close fails (nothing completed, nothing visible) and the
        job's files go with the job (retention)."""
        with suppress(OSError), writer.lock:
            writer.native.close()
        with suppress(OSError):
            self.fs.delete_file(key)

    def read_range(self, job_id: str, name: str, start: int, stop: int) -> bytes:
        key = self.key(job_id, name)
        try:
            with self.fs.open_input_file(key) as native:  # one ranged GET
                return bytes(native.read_at(max(0, min(stop, native.size()) - start), start))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.unavailable(exc) from None

    def remove(self, job_id: str, name: str) -> None:
        try:
            self.fs.delete_file(self.key(job_id, name))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self.unavailable(exc) from None

    def file_size(self, job_id: str, name: str) -> int | None:
        try:
            info = self.fs.get_file_info(self.key(job_id, name))
        except OSError as exc:
            raise self.unavailable(exc) from None
        return info.size if info.type == pafs.FileType.File else None

    def _files(self, job_id: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self._folder(job_id), allow_not_found=True, recursive=True)
        try:
            return [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        except OSError as exc:
            raise self.unavailable(exc) from None

    def size(self, job_id: str) -> int:
        return sum(info.size or 0 for info in self._files(job_id))

    def delete(self, job_id: str) -> None:
        try:
            self.fs.delete_dir(self._folder(job_id))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self.unavailable(exc) from None

    def jobs(self) -> Iterator[str]:
        selector = pafs.FileSelector(self.base, allow_not_found=True, recursive=False)
        try:
            found = self.fs.get_file_info(selector)
        except OSError as exc:
            raise self.unavailable(exc) from None
        for info in found:
            if info.type == pafs.FileType.Directory and is_job_id(info.base_name):
                yield info.base_name

    def last_written(self, job_id: str) -> float | None:
        times = [i.mtime.timestamp() for i in self._files(job_id) if i.mtime is not None]
        return max(times, default=None)

    def check(self) -> None:
        """The bucket answers to these credentials; created when it does not exist yet."""
        try:
            info = self.fs.get_file_info(self.bucket)
        except OSError as exc:
            raise self.unavailable(exc) from None
        if info.type == pafs.FileType.NotFound:
            try:
                self.fs.create_dir(self.bucket)
            except OSError as exc:
                raise StorageRefusedError(
                    f"the bucket {self.bucket!r} does not exist and could not be created: "
                    + " ".join(str(exc).split())[:ERROR_CHARS]
                ) from None
