"""Who am I: the calling key's name and role (the frontend shows pages by it)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.problems import AUTH_PROBLEMS
from api.ratelimit import KeyRateLimiter
from irisq.keys import KeyRing
from irisq.settings import Role, Settings

router = APIRouter(prefix="/v1/me", tags=["keys"])


class Quota(BaseModel):
    """One quota: how much is used and how much is allowed."""

    used: int
    limit: int


class Me(BaseModel):
    """The key making this request."""

    name: str
    role: Role
    auth: Literal["api_keys", "open"] = Field(
        description="`open`: no keys are configured, every caller is an anonymous admin."
    )
    quotas: dict[str, Quota] = Field(
        description="`jobs_in_flight`, `rows_in_flight` and `stored_bytes` of this key."
    )


@router.get("", response_model=Me, responses=AUTH_PROBLEMS)
async def get_me(request: Request, caller: CallerDep) -> Me:
    """The calling key's name, role and quotas."""
    settings: Settings = request.app.state.settings
    keys: KeyRing = request.app.state.keys
    limiter: KeyRateLimiter = request.app.state.rate_limiter
    now = await limiter.usage(caller.name)
    return Me(
        name=caller.name,
        role=caller.role,
        auth="open" if keys.open else "api_keys",
        quotas={
            "jobs_in_flight": Quota(used=now.jobs, limit=settings.quota_jobs_in_flight),
            "rows_in_flight": Quota(used=now.rows, limit=settings.quota_rows_in_flight),
            "stored_bytes": Quota(used=now.bytes, limit=settings.quota_stored_bytes),
        },
    )
