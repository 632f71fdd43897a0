"""A job record's encoding in Redis: the hash's fields to and from a Job, and the record as
the end of a job announces it (irisq.store_keys.DONE_CHANNEL) to the API's waiting requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.typing import EncodableT, FieldT

from irisq.job_types import Job, JobKind, JobStatus

# What one HSET writes: field name → text, in the types redis-py declares.
Fields = dict[FieldT, EncodableT]

# A record field saying the result is in a file beside the batch files (it was too large to
# keep in Redis); the API reads it from there.
RESULT_IN_FILE = "result_in_file"
# A record field set when a job ends: the bytes its files take, counted against its owner.
STORED_BYTES = "stored_bytes"


@dataclass(frozen=True)
class ResultFile:
    """A result written to a file (irisq.results) because it is too large for Redis."""

    size: int


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def queued_fields(
    job_id: str, kind: JobKind, created_at: str, owner: str | None, callback_url: str | None
) -> Fields:
    """The fields of a new job's record (its task to re-send aside)."""
    fields: Fields = {
        "job_id": job_id,
        "kind": kind.value,
        "status": JobStatus.QUEUED.value,
        "progress": "0",
        "created_at": created_at,
        "attempts": "0",
    }
    if owner:
        fields["owner"] = owner
    if callback_url is not None:
        fields["callback_url"] = callback_url
    return fields


def error_field(error_type: str, message: str, details: list[dict[str, Any]] | None = None) -> str:
    """The `error` field of a job that failed or was canceled (a JobError's JSON)."""
    return json.dumps({"type": error_type, "message": message, "details": details})


def success_fields(result: str | ResultFile, stored_bytes: int | None = None) -> dict[str, str]:
    """The fields a succeeded job's record gets: its result, or that its result is in a file
    (which then counts with the job's other files against its owner's stored bytes)."""
    fields = {"progress": "1", "stage": "done"}
    if isinstance(result, ResultFile):
        fields[RESULT_IN_FILE] = "1"
        fields[STORED_BYTES] = str((stored_bytes or 0) + result.size)
        return fields
    fields["result"] = result
    if stored_bytes is not None:
        fields[STORED_BYTES] = str(stored_bytes)
    return fields


def parse_record(fields: dict[Any, Any]) -> Job | None:
    """A job from its record's fields (as HGETALL returns them); None if there are none."""
    if not fields:
        return None
    record: dict[str, Any] = {as_text(k): as_text(v) for k, v in fields.items()}
    record.pop("task", None)
    in_file = record.pop(RESULT_IN_FILE, None) is not None
    for name in ("result", "error", "callback"):
        if name in record:
            record[name] = json.loads(record[name])
    if isinstance(record.get("result"), dict):  # written before results carried it
        record["result"].setdefault("kind", record.get("kind"))
    job = Job.model_validate(record)
    job._result_in_file = in_file
    return job


def parse_announcement(data: bytes) -> tuple[str, dict[str, str] | None]:
    """The job id and, if it came along, the record of a DONE_CHANNEL message."""
    if data[:1] == b"[":
        flat = json.loads(data)
        fields = dict(zip(flat[0::2], flat[1::2], strict=True))
        return fields["job_id"], fields
    return data.decode(), None
