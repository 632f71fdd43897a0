"""Idempotency keys (the IETF httpapi `Idempotency-Key` header) on the three submissions.

A client that retries after a timeout sends the same key again; the first request's job is
answered (`Idempotent-Replayed: true`) and nothing is queued twice. Per API key, in Redis:
`irisq:idempotency:<owner>:<sha256 of the key>` holds the request's fingerprint, then the
job and the 202 body it got, for `IDEMPOTENCY_TTL_SECONDS`. Claiming is one Lua script, so of
twenty identical requests at once exactly one goes on; the others are told the key is in
use (409) until it has finished, then get its job. A request that fails releases its key:
the client may retry it as it is.

What counts as "the same request": the route, the parameters that change what is done
(`on_invalid`, `callback_url`; never `wait`) and the body: the JSON as sent, or for an
upload the file's bytes, hashed while they stream (the multipart framing differs per send).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Header, HTTPException, Request

from api.problems import field_problem
from irisq.jobs import as_text

PREFIX = "irisq:idempotency:"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# A claim not completed by then is released: its request died with its API process.
CLAIM_SECONDS = 300
HEADER = "Idempotency-Key"
# The fingerprint an upload claims its key with: the file's own is known once it is in.
UPLOADING = "uploading"
REPLAYED = "Idempotent-Replayed"

KEY_MAX_CHARS = 255
KEY_PATTERN = r"^[\x20-\x7e]+$"  # printable ASCII, as a header carries it intact
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=KEY_MAX_CHARS,
        pattern=KEY_PATTERN,
        description="Any unique string (a UUID): a retry with the same key and the same "
        "request within 24 h returns the first job instead of queuing another.",
    ),
]

# KEYS: the key's record. ARGV: fingerprint, claim seconds. Claims the key, or says why not.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'fingerprint', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if state == 'claimed' then return {'in_use'} end
return {'done', redis.call('HGET', KEYS[1], 'fingerprint'), redis.call('HGET', KEYS[1], 'answer')}
"""


class Claim(StrEnum):
    CLAIMED = "claimed"  # this request goes on, and completes or releases the key
    IN_USE = "in_use"
    DONE = "done"


@dataclass(frozen=True)
class Held:
    """What claiming a key found: it is ours now, someone else's, or done (with the first
    request's fingerprint and its 202 body, a JobAccepted, as JSON)."""

    claim: Claim
    fingerprint: str | None = None
    answer: dict[str, Any] | None = None

    def replay_for(self, fingerprint: str) -> dict[str, Any]:
        """The first request's answer if this one is the same request; else 409 or 422."""
        if self.claim is Claim.IN_USE:
            raise in_use()
        if self.fingerprint != fingerprint or self.answer is None:
            raise different_request()
        return self.answer


def fingerprint(route: str, params: dict[str, str | None], body_digest: str) -> str:
    """What makes two requests "the same" for an idempotency key."""
    material = json.dumps([route, sorted((k, v) for k, v in params.items() if v is not None)])
    return hashlib.sha256(material.encode() + b"\0" + body_digest.encode()).hexdigest()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def normalized(key: str) -> str:
    """The key as the IETF draft writes it (a quoted string) or bare, as Stripe's clients do."""
    return key[1:-1] if len(key) > 2 and key[0] == key[-1] == '"' else key


class IdempotencyKeys:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM)

    @staticmethod
    def record(owner: str, key: str) -> str:
        return PREFIX + owner + ":" + hashlib.sha256(normalized(key).encode()).hexdigest()

    async def claim(
        self, owner: str, key: str, fingerprint: str, seconds: int = CLAIM_SECONDS
    ) -> Held:
        """Claim the key for this request for `seconds`, unless it is in use or done."""
        reply = await self._claim(keys=[self.record(owner, key)], args=[fingerprint, seconds])
        claim = Claim(as_text(reply[0]))
        if claim is not Claim.DONE:
            return Held(claim)
        return Held(claim, as_text(reply[1]), json.loads(as_text(reply[2])))

    async def complete(self, owner: str, key: str, fingerprint: str, answer: str) -> None:
        """Keep the job's 202 body for replays, for 24 hours."""
        record = self.record(owner, key)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(
                record, mapping={"state": "done", "fingerprint": fingerprint, "answer": answer}
            )
            pipe.expire(record, IDEMPOTENCY_TTL_SECONDS)
            await pipe.execute()

    async def release(self, owner: str, key: str) -> None:
        """The request failed: the key is free for a retry."""
        await self._client.delete(self.record(owner, key))


class KeyUse:
    """One request's use of its `Idempotency-Key` (nothing at all when it sent none)."""

    def __init__(
        self, keys: IdempotencyKeys, owner: str, key: str | None, seconds: int = CLAIM_SECONDS
    ) -> None:
        self.keys, self.owner, self.key, self.seconds = keys, owner, key, seconds

    async def of_body(self, request: Request, route: str, params: dict[str, str | None]) -> str:
        """The fingerprint of a JSON request (read only when it came with a key)."""
        if self.key is None:
            return ""
        return fingerprint(route, params, digest(await request.body()))

    async def claim(self, fingerprint: str) -> Held | None:
        """None without a key; else what claiming it found."""
        if self.key is None:
            return None
        return await self.keys.claim(self.owner, self.key, fingerprint, self.seconds)

    async def replay(self, fingerprint: str) -> dict[str, Any] | None:
        """The first answer to replay; None when this request goes on (it holds the key, or
        sent none). 409 or 422 as `Held.replay_for` says."""
        held = await self.claim(fingerprint)
        if held is None or held.claim is Claim.CLAIMED:
            return None
        return held.replay_for(fingerprint)

    async def done(self, fingerprint: str, answer: str) -> None:
        if self.key is not None:
            await asyncio.shield(self.keys.complete(self.owner, self.key, fingerprint, answer))

    async def failed(self) -> None:
        """Free the key (shielded: a request cancelled by its client frees it too)."""
        if self.key is not None:
            await asyncio.shield(self.keys.release(self.owner, self.key))


def in_use() -> HTTPException:
    return HTTPException(
        409,
        f"a request with this {HEADER} is still being processed; retry once it has finished",
        {"Retry-After": "1"},
    )


def different_request() -> Exception:
    return field_problem(
        HEADER,
        "this key was already used for a different request (another body or parameters); "
        "use a new key for a new request",
        location="header",
    )
