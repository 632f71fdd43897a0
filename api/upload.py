"""Receiving a CSV upload as a stream: into the batch storage chunk by chunk, checked as it
arrives.

Starlette's form parser would read the whole body before the handler runs; here the size
limit, the key's storage quota, the encoding and the header are decided while the bytes come
in, so a 2 GB file is refused after 100 MB, and a file with the wrong columns after its
first line. The file is written in 1 MB pieces from a thread, never from the event loop (on
S3, parts of a multipart upload), and appears in the storage only once it passed every check.
(A few lines past the ~250 we aim for: the multipart parsing and the checks it feeds are
one stream, read in one place.)
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import anyio
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from irisq.csv_rules import BOM, CsvRejectedError, read_first_line

FILE_FIELD = "file"
# Multipart framing around the file (boundaries, part headers) on top of the size limit.
FRAMING_ALLOWANCE = 64 * 1024
MAX_HEADER_LINE = 64 * 1024
MAX_PART_HEADER = 8 * 1024
WRITE_BYTES = 1024 * 1024  # what is gathered before one write from a thread


class UploadRefusedError(Exception):
    """The upload is refused; `status` and `detail` become the problem response."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class CsvInspector:
    """Checks a CSV as its bytes arrive: UTF-8, a usable header (or a first row in UCI's
    headerless layout, as the worker reads it), and how many rows."""

    max_bytes: int
    max_rows: int
    quota_left: int | None = None  # what the key may still store, in bytes
    over_quota: Callable[[int], str] | None = None  # the 429's detail for a size
    digest: Any = None  # a hashlib object fed the file's bytes (an idempotency fingerprint)
    size: int = 0
    newlines: int = 0
    header_done: bool = False
    headerless: bool = False  # the first line is a row (UCI's iris.data)
    has_rows: bool = False
    ends_with_newline: bool = True
    _head: str = ""
    _blank_first_line: bool = False
    _ends_with_cr: bool = False
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("strict")
    )

    def feed(self, chunk: bytes, final: bool = False) -> None:
        self.size += len(chunk)
        if self.digest is not None:
            self.digest.update(chunk)
        if self.size > self.max_bytes:
            raise UploadRefusedError(
                413, f"the file is larger than the limit of {self.max_bytes:,} bytes"
            )
        if self.quota_left is not None and self.size > self.quota_left:
            detail = self.over_quota(self.size) if self.over_quota else "storage quota reached"
            raise UploadRefusedError(429, detail)
        text = self._checked_text(chunk, final)
        # Before the early return: the last call brings no bytes but may end on a lone CR.
        self._refuse_bare_carriage_returns(chunk, final)
        if not chunk:
            return
        # Counted on the bytes: a line break is never part of a longer UTF-8 character.
        self.newlines += chunk.count(b"\n")
        self.ends_with_newline = chunk.endswith(b"\n")
        rest = text
        if not self.header_done:
            rest = self._header(text if text is not None else chunk.decode("ascii"))
        if self.header_done and not self.has_rows:
            after = rest if rest is not None else chunk.decode("utf-8", "ignore")
            if after.strip():
                if self._blank_first_line:
                    raise UploadRefusedError(
                        422, "the first line is empty; it must name the columns"
                    )
                self.has_rows = True
        if self.rows > self.max_rows + 1:  # +1: a last line without newline is one more
            raise UploadRefusedError(413, f"the file has more than {self.max_rows:,} rows")

    def _checked_text(self, chunk: bytes, final: bool) -> str | None:
        """Refuse what is not UTF-8; the chunk's text, or None for ASCII (most files), which
        is UTF-8 as it is and is not decoded: a 280 MB upload is not copied into text."""
        held = len(self._decoder.getstate()[0])  # bytes of a character split across chunks
        if not held and chunk.isascii():
            return None
        try:
            return self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            offset = self.size - len(chunk) - held + exc.start
            raise UploadRefusedError(
                422,
                f"the file is not UTF-8 text (invalid byte at offset {offset:,}); "
                "save it as 'CSV UTF-8' and upload it again",
            ) from None

    def _refuse_bare_carriage_returns(self, chunk: bytes, final: bool) -> None:
        """Lines must end with LF or CRLF: a lone CR (classic Mac) would make the whole file
        one line, slipping past the row limit and the worker's block reading."""
        if not self._ends_with_cr and b"\r" not in chunk:
            return  # LF files: one scan, no copy
        joined = (b"\r" if self._ends_with_cr else b"") + chunk
        self._ends_with_cr = joined.endswith(b"\r") and not final
        body = joined[:-1] if self._ends_with_cr else joined
        if body.count(b"\r") != body.count(b"\r\n"):
            raise UploadRefusedError(
                422, "lines must end with LF or CRLF; this file uses CR alone (old Mac format)"
            )

    def _header(self, text: str) -> str:
        """Collect the first line and check its columns; returns the text after it."""
        self._head += text
        line, newline, rest = self._head.partition("\n")
        if len(line) > MAX_HEADER_LINE:  # whether the line arrived whole or in pieces
            raise UploadRefusedError(422, "the first line (the header) is too long")
        if not newline:
            return ""
        self.header_done = True
        line = line.lstrip(BOM).rstrip("\r")
        if not line.strip():  # refused once text follows; a file of blank lines is "empty"
            self._blank_first_line = True
            return rest
        try:
            header, _ = read_first_line(line)
        except CsvRejectedError as exc:
            raise UploadRefusedError(422, str(exc)) from None
        except csv.Error as exc:
            raise UploadRefusedError(422, f"the header line is not valid CSV: {exc}") from None
        self.headerless = self.has_rows = not header.present
        return rest

    @property
    def rows(self) -> int:
        """Data lines, after the header if any (blank lines included: an upper bound for
        progress)."""
        lines = self.newlines + (0 if self.ends_with_newline else 1)
        return max(lines - (0 if self.headerless else 1), 0)

    def finish(self) -> None:
        self.feed(b"", final=True)
        blank = self._blank_first_line or not self._head.lstrip(BOM).strip()
        if self.size == 0 or (blank and not self.has_rows):
            raise UploadRefusedError(422, "the file is empty")
        if not self.header_done:  # a single line without newline: only a header
            self._header("\n")
        if not self.has_rows:
            raise UploadRefusedError(422, "the file has a header but no rows")
        if self.rows > self.max_rows:
            raise UploadRefusedError(413, f"the file has more than {self.max_rows:,} rows")


# Opens the file the upload is written to: in place when its block ends normally.
Sink = Callable[[], AbstractContextManager[BinaryIO]]


class _FileField:
    """python-multipart callbacks that pass the `file` part through the inspector and gather
    it for writing (`write`)."""

    def __init__(self, sink: Sink | None, inspector: CsvInspector) -> None:
        self.sink = sink  # None: check the file, keep nothing
        self.inspector = inspector
        self.found = False
        self.ended = False
        self.opened: AbstractContextManager[BinaryIO] | None = None
        self.handle: BinaryIO | None = None
        self.in_file = False  # inside the `file` part
        self.gathered = bytearray()
        self._headers: dict[str, str] = {}
        self._name = b""
        self._value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_header_field": lambda data, start, end: self._add("_name", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _add(self, attribute: str, data: bytes) -> None:
        joined = getattr(self, attribute) + data
        if len(joined) > MAX_PART_HEADER:  # a part header is a line, not a payload
            raise UploadRefusedError(400, "a header of the multipart body is too long")
        setattr(self, attribute, joined)

    def _header_end(self) -> None:
        self._headers[self._name.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._name, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        if params.get(b"name") == FILE_FIELD.encode() and not self.found:
            self.found = self.in_file = True  # the file is opened by `write`, in a thread

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            chunk = data[start:end]
            self.inspector.feed(chunk)
            if self.sink is not None:
                self.gathered += chunk

    def _part_end(self) -> None:
        self.in_file = False
        self._headers = {}

    async def write(self, at_least: int = WRITE_BYTES) -> None:
        """Write what was gathered, from a thread, once there is `at_least` of it."""
        if self.sink is None or not self.found or len(self.gathered) < max(at_least, 1):
            return
        if self.handle is None:
            self.opened = self.sink()
            self.handle = await anyio.to_thread.run_sync(self.opened.__enter__)
        piece, self.gathered = bytes(self.gathered), bytearray()
        await anyio.to_thread.run_sync(self.handle.write, piece)

    def _end(self) -> None:
        self.ended = True

    async def keep(self) -> None:
        """The file passed every check: put it in place."""
        opened, self.opened, self.handle = self.opened, None, None
        if opened is not None:
            await anyio.to_thread.run_sync(opened.__exit__, None, None, None)

    def discard(self, exc: BaseException) -> None:
        """Refused or cut off: nothing of it stays. On the event loop (no await may run when
        the request is cancelled): a local file is unlinked, an S3 upload closed and deleted."""
        opened, self.opened, self.handle = self.opened, None, None
        if opened is not None:
            opened.__exit__(type(exc), exc, exc.__traceback__)


async def receive_csv(request: Request, sink: Sink | None, inspector: CsvInspector) -> None:
    """Stream the multipart field `file` of `request` into what `sink` opens, checking it
    (with no sink: only checking it)."""
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data" or b"boundary" not in options:
        raise UploadRefusedError(
            415, f"send the CSV as multipart/form-data with the field '{FILE_FIELD}'"
        )
    # The whole body, other parts and framing included, is held to the upload limit plus
    # FRAMING_ALLOWANCE by the guard (api.guard), before and while it streams.
    form = _FileField(sink, inspector)
    try:
        parser = MultipartParser(options[b"boundary"], form.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
            await form.write()
        parser.finalize()
        await form.write(at_least=0)
        if not form.ended:
            raise UploadRefusedError(400, "the multipart body ended before its closing boundary")
        if not form.found:
            raise UploadRefusedError(422, f"the form has no field '{FILE_FIELD}' with the CSV file")
        inspector.finish()
    except FormParserError as exc:
        form.discard(exc)
        raise UploadRefusedError(400, f"the multipart body is malformed: {exc}") from None
    except BaseException as exc:
        form.discard(exc)
        raise
    await form.keep()
