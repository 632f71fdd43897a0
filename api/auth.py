"""Who is calling, as the guard (api.guard) established it: the key's name and role.

With no keys configured the API is open (local development): every caller is an admin,
which the startup log and `/readyz` both say. IRISQ_ENV=production refuses to start open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from api.ratelimit import Usage
from irisq.keys import Caller

_bearer = HTTPBearer(
    auto_error=False,
    description="An irisq API key (`python -m irisq.keys new`); not needed when the API is open.",
)


async def _caller(request: Request, _: Annotated[object, Depends(_bearer)]) -> Caller:
    """The guard checked the key before the body was read; `_bearer` only documents it."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:  # a route the guard treats as open asked for a caller: refuse
        raise HTTPException(401, "an API key is required", {"WWW-Authenticate": "Bearer"})
    return caller


async def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.is_admin:
        raise HTTPException(403, f"the key {caller.name!r} has the predict role; this needs admin")
    return caller


def usage_of(request: Request) -> Usage:
    """The caller's usage as the guard read it with the rate limit (submissions only)."""
    usage: Usage | None = getattr(request.state, "usage", None)
    return usage or Usage()


async def _usage(request: Request) -> Usage:
    return usage_of(request)


CallerDep = Annotated[Caller, Depends(_caller)]
AdminDep = Annotated[Caller, Depends(_admin)]
UsageDep = Annotated[Usage, Depends(_usage)]


def may_see(caller: Caller, owner: str | None) -> bool:
    """A job is visible to the key that created it, and to admins."""
    return caller.is_admin or (owner is not None and owner == caller.name)
