"""Batches: upload a CSV to score as a job, then download the result (and skipped rows)."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from api.accepted import JobAccepted, accepted, accepted_doc, answer_of
from api.auth import CallerDep, UsageDep
from api.deps import IdempotencyDep, ResourcesDep
from api.guard import stored_quota_detail
from api.idempotency import (
    CLAIM_SECONDS,
    UPLOADING,
    Claim,
    KeyHeader,
    KeyUse,
    fingerprint,
    in_use,
)
from api.job_access import NOT_FOUND, JobId, find_job
from api.problems import AUTH_PROBLEMS, Problem
from api.resources import Resources
from api.submission import CallbackQuery, checked_callback, enqueue, ensure_room, replayed
from api.upload import FILE_FIELD, CsvInspector, Sink, UploadRefusedError, receive_csv
from irisq.batch_storage import StorageUnavailableError
from irisq.batches import ERRORS, INPUT, RESULT, BatchFiles
from irisq.job_types import Job, JobKind, JobStatus
from irisq.keys import Caller
from irisq.settings import Settings
from irisq.tasks import BATCH_TASK

router = APIRouter(prefix="/v1/batches", tags=["batches"])

CSV_TYPE = "text/csv; charset=utf-8"
DOWNLOAD_PIECE_BYTES = 4 * 1024 * 1024  # from object storage: one ranged GET a piece


class LocalFileResponse(FileResponse):
    """A file from the local batch folder, read in 256 KiB pieces.

    Starlette reads 64 KiB at a time, each read a trip to a worker thread: a 166 MB result
    took 0.34-0.48 s to send that way, and 0.06 s in 1 MiB pieces (by curl, 2026-12-04). A
    664 MB file: 1.3-1.9 s in 64 KiB pieces, 0.48-0.91 s in 256 KiB, 0.32-0.54 s in 1 MiB;
    256 KiB has most of the gain for a quarter of 1 MiB's memory. The memory stays bounded:
    uvicorn's flow control holds a download to about one piece, and a key has at most
    IRISQ_MAX_REQUESTS_IN_FLIGHT_PER_KEY (64) requests at once: 16 MiB a key, at most
    ~250 MiB for the process's 1,000 connections (`--limit-concurrency`)."""

    chunk_size = 256 * 1024


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "A UTF-8 CSV whose first line names the four "
                        "measurement columns, then one flower a line.",
                    }
                },
            },
            # The part is a CSV file, not any bytes (the file picker of /docs stays).
            "encoding": {FILE_FIELD: {"contentType": "text/csv"}},
        }
    },
}
OnInvalid = Annotated[
    Literal["reject", "skip"],
    Query(description="`reject` refuses the file if any row is bad; `skip` scores the rest."),
]
NOT_READY = {
    JobStatus.QUEUED: "is still queued",
    JobStatus.RUNNING: "is still running",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "was canceled",
}
REFUSALS: dict[int | str, dict[str, Any]] = {
    **AUTH_PROBLEMS,
    **{status_code: {"model": Problem} for status_code in (400, 408, 413, 415, 422, 503, 507)},
}
DOWNLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    **AUTH_PROBLEMS,
    **NOT_FOUND,
    200: {"content": {"text/csv": {}}},
    409: {"model": Problem, "description": "The batch has not succeeded (yet)."},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={
        **REFUSALS,
        **accepted_doc("get_batch_result", "get_batch_errors"),
        409: {"model": Problem, "description": "The Idempotency-Key is in use by a request."},
    },
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def create_batch(
    request: Request,
    response: Response,
    resources: ResourcesDep,
    caller: CallerDep,
    usage: UsageDep,
    idempotency: IdempotencyDep,
    on_invalid: OnInvalid = "reject",
    callback_url: CallbackQuery = None,
    idempotency_key: KeyHeader = None,
) -> Any:
    """Upload a CSV (field `file`) of measurements to score; poll the job, then download."""
    settings = resources.settings
    checked_callback(callback_url, settings, caller)
    # A full queue refuses before any of the upload (up to 100 MB) is stored.
    await run_in_threadpool(ensure_room, resources.jobs, settings, BATCH_TASK)
    quota_left = settings.quota_stored_bytes - usage.bytes
    inspector = CsvInspector(
        settings.batch_max_bytes,
        settings.batch_max_rows,
        quota_left=quota_left,
        over_quota=lambda size: stored_quota_detail(usage.bytes, size, settings.quota_stored_bytes),
        digest=hashlib.sha256() if idempotency_key else None,
    )
    key = KeyUse(idempotency, caller.name, idempotency_key, _upload_claim_seconds(settings))
    params = {"on_invalid": on_invalid, "callback_url": callback_url}
    held = await key.claim(UPLOADING)
    if held is not None and held.claim is not Claim.CLAIMED:
        if held.claim is Claim.IN_USE:
            raise in_use()
        # Done before: the same request only if the same file comes again, so read it (held
        # to every limit) and keep none of it.
        await _received(request, None, inspector)
        return replayed(
            held.replay_for(fingerprint("batches", params, inspector.digest.hexdigest()))
        )
    try:
        job = await _store_and_enqueue(
            request, resources, caller, inspector, on_invalid, callback_url
        )
    except BaseException:
        await key.failed()
        raise
    if inspector.digest is not None:
        same = fingerprint("batches", params, inspector.digest.hexdigest())
        await key.done(same, answer_of(job).model_dump_json())
    return accepted(job, response)


async def _store_and_enqueue(
    request: Request,
    resources: Resources,
    caller: Caller,
    inspector: CsvInspector,
    on_invalid: str,
    callback_url: str | None,
) -> Job:
    """Stream the upload into the batch storage while checking it, then queue the job; on
    any refusal nothing is left behind."""
    job_id = resources.job_ids.new(caller.name)
    files = BatchFiles(resources.storage, job_id)
    try:
        await _received(request, lambda: files.writing(INPUT), inspector)
        return await run_in_threadpool(
            enqueue,
            resources.celery,
            resources.jobs,
            resources.settings,
            caller,
            JobKind.BATCH,
            BATCH_TASK,
            [on_invalid, inspector.rows],
            job_id,
            inspector.size,
            callback_url,
        )
    except StorageUnavailableError:
        await run_in_threadpool(_forget, files)
        raise  # 503 with Retry-After (api.error_handlers)
    except HTTPException:
        await run_in_threadpool(_forget, files)
        raise
    except OSError as exc:  # the local batch folder is full or unwritable
        await run_in_threadpool(_forget, files)
        status_code = 507 if exc.errno == errno.ENOSPC else 503
        raise HTTPException(
            status_code, f"the upload could not be stored: {exc.strerror}"
        ) from None
    except BaseException:  # cancelled too: no await can run here, so remove it in place
        _forget(files)
        raise


def _forget(files: BatchFiles) -> None:
    """Remove what a refused upload stored (with the storage away, its retention sweep will:
    no record points to it)."""
    with suppress(StorageUnavailableError, OSError):
        files.delete()


async def _received(request: Request, sink: Sink | None, inspector: CsvInspector) -> None:
    """`receive_csv`, its refusals as HTTP errors."""
    try:
        await receive_csv(request, sink, inspector)
    except UploadRefusedError as exc:
        raise HTTPException(exc.status, exc.detail) from None


def _upload_claim_seconds(settings: Settings) -> int:
    """How long an upload may hold its idempotency key: the slowest upload accepted, within
    an hour (a claim outlives an API process that died holding it by no more)."""
    slowest = settings.batch_max_bytes / max(settings.body_min_bytes_per_second, 1)
    return int(min(3600, max(CLAIM_SECONDS, slowest + 60)))


def _finished_batch(resources: Resources, job_id: str, caller: Caller) -> None:
    job = find_job(resources, job_id, caller)
    if job.kind is not JobKind.BATCH:
        raise HTTPException(404, f"job {job_id!r} is a {job.kind.value} job, not a batch")
    if job.status is not JobStatus.SUCCEEDED:
        state = NOT_READY[job.status]
        reason = f": {job.error.message}" if job.error else ""
        raise HTTPException(409, f"the batch {state}{reason}; its files exist once it succeeds")


def _download(resources: Resources, job_id: str, name: str, filename: str) -> Response:
    """The file from the batch storage: read from disk (with ranges) when it is local,
    streamed in 4 MB pieces read from a thread when it is in object storage."""
    storage = resources.storage
    size = storage.file_size(job_id, name)
    if size is None:
        raise HTTPException(404, f"this batch has no {name.removesuffix('.csv')} file")
    local = storage.local_path(job_id, name)
    if local is not None:
        return LocalFileResponse(local, media_type=CSV_TYPE, filename=filename)
    return StreamingResponse(
        _pieces(BatchFiles(storage, job_id), name),
        media_type=CSV_TYPE,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


async def _pieces(files: BatchFiles, name: str) -> AsyncIterator[bytes]:
    handle = await run_in_threadpool(files.reader, name)
    try:
        while piece := await run_in_threadpool(handle.read, DOWNLOAD_PIECE_BYTES):
            yield piece
    finally:
        await run_in_threadpool(handle.close)


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses=DOWNLOAD_ANSWERS,
)
def get_batch_result(resources: ResourcesDep, caller: CallerDep, job_id: str = JobId) -> Response:
    """The scored CSV: the input columns, then species, one probability per species, version."""
    _finished_batch(resources, job_id, caller)
    return _download(resources, job_id, RESULT, f"irisq-{job_id}-result.csv")


@router.get(
    "/{job_id}/errors",
    response_class=FileResponse,
    responses=DOWNLOAD_ANSWERS,
)
def get_batch_errors(resources: ResourcesDep, caller: CallerDep, job_id: str = JobId) -> Response:
    """Rows left out by `on_invalid=skip`: line, column, value and why."""
    _finished_batch(resources, job_id, caller)
    return _download(resources, job_id, ERRORS, f"irisq-{job_id}-errors.csv")
