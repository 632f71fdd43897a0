"""Who may call: API keys (`Authorization: Bearer ...`), roles, and a per-key rate limit.

With no keys configured the API is open (local development): every caller is an admin,
which the startup log and `/readyz` both say. IRISQ_ENV=production refuses to start open.
"""

from __future__ import annotations

import time
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from irisq.keys import ANONYMOUS, Caller, KeyRing

RATE_PREFIX = "irisq:rate:"
_bearer = HTTPBearer(
    auto_error=False,
    description="An irisq API key (`python -m irisq.keys new`); not needed when the API is open.",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _key_ring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keys
    return ring


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
) -> Caller:
    ring = _key_ring(request)
    if ring.open:
        caller = ANONYMOUS
        bucket = f"anonymous@{request.client.host if request.client else 'unknown'}"
    else:
        if credentials is None:
            raise HTTPException(
                401, "an API key is required: Authorization: Bearer <key>", _CHALLENGE
            )
        found = ring.caller(credentials.credentials)
        if found is None:
            raise HTTPException(401, "this API key is not valid", _CHALLENGE)
        caller, bucket = found, found.name
    await _rate_limit(request.app.state.async_redis, bucket, settings.rate_limit_per_second)
    return caller


async def _rate_limit(client: aioredis.Redis, bucket: str, per_second: int) -> None:
    """A fixed one-second window per key, counted in Redis so that every API instance
    shares it: one INCR, no read-modify-write race."""
    if per_second == 0:
        return
    key = f"{RATE_PREFIX}{bucket}:{int(time.time())}"
    async with client.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 2)
        count, _ = await pipe.execute()
    if int(count) > per_second:
        raise HTTPException(
            429,
            f"more than {per_second} requests in one second with this key; slow down",
            {"Retry-After": "1"},
        )


async def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.is_admin:
        raise HTTPException(403, f"the key {caller.name!r} has the predict role; this needs admin")
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]
AdminDep = Annotated[Caller, Depends(_admin)]


def may_see(caller: Caller, owner: str | None) -> bool:
    """A job is visible to the key that created it, and to admins."""
    return caller.is_admin or (owner is not None and owner == caller.name)
