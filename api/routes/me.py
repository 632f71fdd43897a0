"""Who am I: the calling key's name and role (the frontend shows pages by it)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.deps import KeyRingDep, RateLimiterDep, SettingsDep
from api.problems import AUTH_PROBLEMS
from irisq.settings import Role

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
async def get_me(
    caller: CallerDep, settings: SettingsDep, keys: KeyRingDep, limiter: RateLimiterDep
) -> Me:
    """The calling key's name, role and quotas."""
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
