"""Job ids: random UUIDs that also say when, and for which key, irisq issued them.

An id is a version-8 UUID (RFC 9562): 48 bits of creation time in milliseconds, 42 random
bits, and 32 bits of an HMAC over those and the owner's key name. So, with no record kept
per job, the API can tell an id it issued to this key whose record is gone (410 Gone:
expired, removed or deleted) from one it never issued (404), and another key's id is a
404 like any made-up one. Guessing a live id means guessing 74 bits, as for a UUIDv7.

Workers and file paths only accept ids in canonical UUID form (`is_job_id`).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterable

from irisq.signing import Signer

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RANDOM_BITS = 42
_MAC_BITS = 32


def is_job_id(value: object) -> bool:
    """True for a UUID in canonical form (lower-case, hyphenated): safe as a path segment and
    a Redis key part. Anything read back from the queue is checked with this first."""
    return isinstance(value, str) and _CANONICAL.fullmatch(value) is not None


class JobIds:
    """Issues job ids and recognises the ones it issued."""

    def __init__(self, secret: bytes) -> None:
        self._signer = Signer(secret, "job ids")

    def _mac(self, owner: str, millis: int, random: int) -> int:
        message = f"{owner}\n{millis}\n{random}".encode()
        return int.from_bytes(self._signer.sign(message)[: _MAC_BITS // 8], "big")

    def new(self, owner: str | None) -> str:
        """A fresh id for a job of `owner` (None: a job the service queued itself)."""
        millis = time.time_ns() // 1_000_000 & (2**48 - 1)
        random = secrets.randbits(_RANDOM_BITS)
        mac = self._mac(owner or "", millis, random)
        value = (
            millis << 80
            | 0x8 << 76  # version 8
            | (random >> 30) << 64  # 12 random bits
            | 0b10 << 62  # the RFC 9562 variant
            | (random & (2**30 - 1)) << 32
            | mac
        )
        return str(uuid.UUID(int=value))

    def issued_to(self, job_id: str, owner: str | None) -> bool:
        """True when this service issued `job_id` for `owner`."""
        if not is_job_id(job_id):
            return False
        value = uuid.UUID(job_id).int
        if (value >> 76) & 0xF != 0x8 or (value >> 62) & 0b11 != 0b10:
            return False
        millis = value >> 80
        random = ((value >> 64) & 0xFFF) << 30 | (value >> 32) & (2**30 - 1)
        return bool(self._mac(owner or "", millis, random) == value & (2**_MAC_BITS - 1))

    def owner_among(self, job_id: str, owners: Iterable[str | None]) -> str | None:
        """Which of `owners` the id was issued to ("" for the service's own jobs), if any."""
        return next(((o or "") for o in owners if self.issued_to(job_id, o)), None)
