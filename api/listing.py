"""Listing jobs newest first, a page at a time, with a cursor that stays right while jobs
are being created.

The cursor is a position in a job index (irisq.jobs' all-jobs index, or an owner's), not an
offset: the (creation time, job id) of the last job looked at. Jobs created since sort
before it and cannot shift a page; a job that expires or is deleted is simply not there.
Redis orders equal scores by member, so (score, id) is a total order and no two jobs share
a position. The cursor is signed: a forged or altered one is refused (422), never followed.

Filters (kind, status) are applied to the records while walking the index, looking at no
more than `MAX_SCANNED` entries per request: a selective filter can answer a short page
with a `next_cursor` to go on from, as DynamoDB's filtered queries do, so no request walks
a key's whole history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from irisq.job_types import SUMMARY_FIELDS, JobKind, JobStatus, JobSummary
from irisq.jobs import JobStore, as_text

MAX_SCANNED = 2000  # index entries looked at per request, matching or not
_CHUNK = 200  # entries read per round trip while filtering
_SIGNATURE_BYTES = 12


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobSummary] = Field(description="Without their results: read a job for its result.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when there is no more."
    )


class CursorError(ValueError):
    """The cursor was not made by this service (or was altered)."""


@dataclass(frozen=True)
class Position:
    """Where the last page stopped: the creation time (index score) and id of a job."""

    score: float
    job_id: str


CURSOR_MAX_CHARS = 512  # a signature and a position: far shorter; more is not ours


class Cursors:
    """Signs positions into opaque cursors and reads them back."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"irisq job listing cursor\0" + key).digest()

    def encode(self, position: Position) -> str:
        payload = json.dumps([position.score, position.job_id], separators=(",", ":")).encode()
        signature = hmac.digest(self._key, payload, "sha256")[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")

    def decode(self, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            raise CursorError("not a cursor this API made") from None
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        expected = hmac.digest(self._key, payload, "sha256")[:_SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise CursorError("not a cursor this API made (or it was altered)")
        score, job_id = json.loads(payload)
        return Position(float(score), str(job_id))


@dataclass(frozen=True)
class Filters:
    kind: JobKind | None = None
    status: JobStatus | None = None

    def match(self, job: JobSummary) -> bool:
        return (self.kind is None or job.kind is self.kind) and (
            self.status is None or job.status is self.status
        )


async def list_page(
    client: aioredis.Redis,
    index: str,
    after: Position | None,
    limit: int,
    filters: Filters,
) -> tuple[list[JobSummary], Position | None]:
    """Up to `limit` jobs of `index` after `after`, newest first, and where the next page
    starts (None: nothing left)."""
    found: list[JobSummary] = []
    scanned = 0
    position = after
    while len(found) < limit and scanned < MAX_SCANNED:
        chunk = limit - len(found) if filters == Filters() else _CHUNK
        entries = await _entries_after(client, index, position, min(chunk, MAX_SCANNED - scanned))
        if not entries:
            return found, None
        for (job_id, score), job in zip(entries, await _summaries(client, entries), strict=True):
            scanned += 1
            position = Position(score, job_id)
            if job is not None and filters.match(job):
                found.append(job)
                if len(found) == limit:
                    break
    if position is None or not await _entries_after(client, index, position, 1):
        return found, None
    return found, position


async def _entries_after(
    client: aioredis.Redis, index: str, after: Position | None, count: int
) -> list[tuple[str, float]]:
    """The next `count` (job id, score) of the index after `after`, newest first."""
    if after is None:
        return _pairs(await _newest(client, index, "+inf", count))
    # Jobs created at the same instant as the position: those after it in the order (lower
    # ids). There are few: one API process gives each job of a call its own microsecond.
    ties: Any = await client.zrange(index, after.score, after.score, byscore=True)
    later = sorted((as_text(job_id) for job_id in ties), reverse=True)
    entries = [(job_id, after.score) for job_id in later if job_id < after.job_id][:count]
    if len(entries) < count:
        older = await _newest(client, index, f"({after.score!r}", count - len(entries))
        entries += _pairs(older)
    return entries


async def _newest(client: aioredis.Redis, index: str, below: str, count: int) -> Any:
    """The `count` entries of the index with the highest scores up to `below`, with them."""
    return await client.zrange(
        index, below, "-inf", desc=True, byscore=True, offset=0, num=count, withscores=True
    )


def _pairs(raw: Any) -> list[tuple[str, float]]:
    return [(as_text(member), float(score)) for member, score in raw]


async def _summaries(
    client: aioredis.Redis, entries: list[tuple[str, float]]
) -> list[JobSummary | None]:
    """The summary of each job (None where its record is gone), in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for job_id, _ in entries:
            pipe.hmget(JobStore.key(job_id), SUMMARY_FIELDS)
        rows = await pipe.execute()
    return [_summary(values) for values in rows]


def _summary(values: list[Any]) -> JobSummary | None:
    record = {
        name: as_text(value)
        for name, value in zip(SUMMARY_FIELDS, values, strict=True)
        if value is not None
    }
    if "job_id" not in record:
        return None
    for name in ("error", "callback"):
        if name in record:
            record[name] = json.loads(record[name])
    return JobSummary.model_validate(record)
