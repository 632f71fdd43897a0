"""A job's progress and final status as Server-Sent Events, instead of polling."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.auth import CallerDep
from api.deps import AsyncRedisDep, ResourcesDep, SettingsDep
from api.event_stream import EVENT_ID_PATTERN, EVENT_SCHEMA, EVENTS_MEDIA_TYPE, JobEvents
from api.job_access import NOT_FOUND, JobId, find_job, with_result
from api.problems import AUTH_PROBLEMS, Problem
from irisq.job_types import Job
from irisq.jobs import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=EVENT_ID_PATTERN,
        description="The `id` of the last event received: the stream goes on after it.",
    ),
]
# Open event streams per key in this process (bounded by IRISQ_EVENTS_STREAMS_PER_KEY).
_open_streams: defaultdict[str, int] = defaultdict(int)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        200: {
            "content": {EVENTS_MEDIA_TYPE: {"schema": EVENT_SCHEMA}},
            "description": "`progress` events (`id`, and data `{job_id, status, progress, "
            "stage}`), then one `status` event whose data is the whole job (or `deleted` if "
            "the job is deleted meanwhile), then the stream ends. Comment lines keep a quiet "
            "stream open.",
        },
        422: {"model": Problem},
        429: {"model": Problem, "description": "This key has too many streams open."},
    },
)
async def stream_job_events(
    resources: ResourcesDep,
    client: AsyncRedisDep,
    settings: SettingsDep,
    caller: CallerDep,
    job_id: str = JobId,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Follow a job as it runs: its progress as it is reported, and its final status (the
    whole job, as `GET /v1/jobs/{job_id}` returns it) the moment it ends; a finished job's at
    once. Reconnect with `Last-Event-ID` to go on where a dropped stream stopped."""
    await run_in_threadpool(find_job, resources, job_id, caller)
    if _open_streams[caller.name] >= settings.events_streams_per_key:
        raise HTTPException(
            429,
            f"this key has {settings.events_streams_per_key} event streams open; close one",
            {"Retry-After": "5"},
        )

    async def read_job(wanted: str) -> Job | None:
        job = JobStore.parse(await client.hgetall(JobStore.key(wanted)))
        if job is not None and job.result_in_file:
            job = await run_in_threadpool(with_result, resources.results, job)
        return job

    events = JobEvents(
        client,
        resources.waiter,
        read_job,
        settings.events_heartbeat_seconds,
        settings.events_max_seconds,
    )

    async def counted() -> AsyncIterator[str]:
        _open_streams[caller.name] += 1
        try:
            async for text in events.stream(job_id, last_event_id):
                yield text
        finally:
            _open_streams[caller.name] -= 1
            if not _open_streams[caller.name]:
                del _open_streams[caller.name]

    return StreamingResponse(
        counted(),
        media_type=EVENTS_MEDIA_TYPE,
        # No cache, and no buffering by nginx-like proxies: each event goes out as written.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
