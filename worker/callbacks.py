"""Delivering a finished job to its callback_url, retried until it lands or the window ends.

All delivery state is in Redis, so any callbacks worker can die at any moment and lose
nothing. The script that ends a job puts its id in the sorted set CALLBACKS_DUE, scored by
when to try (irisq.jobs). A dispatcher thread in each callbacks worker claims what is due:
in one script it moves those entries a lease ahead and gets back the new score, which is
the claim. The task carries the claim and settles the attempt only while the entry still
has that score: a message delivered twice, or one whose lease ran out and was claimed
again (its worker died), does nothing. Settling writes the attempt to the job's `callback`
field and removes the entry or scores it for the next try, in one script.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import redis
from celery import Celery

from irisq.job_types import CallbackState, Job
from irisq.jobs import ALLOW_OOM, CALLBACKS_DUE, JobStore
from irisq.queueing import queue_depth
from irisq.results import ResultFiles
from irisq.settings import Settings
from irisq.tasks import CALLBACKS_QUEUE, DELIVER_CALLBACK_TASK
from irisq.webhooks import signed_headers
from worker.callback_http import Attempt, post

logger = logging.getLogger(__name__)

DISPATCH_EVERY_SECONDS = 0.5
CLAIM_BATCH = 100
# No more claims while this many deliveries wait in the queue: their leases would run out
# before a worker reached them, and each would be claimed and sent again.
MAX_WAITING = 100
MAX_DELAY_SECONDS = 3600  # between two attempts, however many failed before
# Many receivers refuse bodies over 1 MiB (nginx's default): a larger result is left out
# (`result_omitted`), and the receiver reads it from GET /v1/jobs/{job_id}.
MAX_BODY_BYTES = 256 * 1024

# KEYS: the due set. ARGV: lease (s), most entries. Returns the claim, then the ids.
_CLAIM = """
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
if #due == 0 then return {} end
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', now + ARGV[1], id) end
return {redis.call('ZSCORE', KEYS[1], due[1]), unpack(due)}
"""
_HOLDS = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
return score and tonumber(score) == tonumber(ARGV[2]) and 1 or 0
"""
# KEYS: the due set, the job's record. ARGV: job id, claim, callback JSON, seconds until the
# next attempt ('' when there is none).
_SETTLE = (
    ALLOW_OOM
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], 'XX', t[1] + t[2] / 1000000 + ARGV[4], ARGV[1])
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'callback', ARGV[3]) end
return 1
"""
)


def claim_due(client: redis.Redis, lease_seconds: float, limit: int = CLAIM_BATCH) -> list[str]:
    """Claim the due deliveries for `lease_seconds`: [claim, job id, ...], or []."""
    found = client.eval(_CLAIM, 1, CALLBACKS_DUE, lease_seconds, limit)
    return [v.decode() if isinstance(v, bytes) else str(v) for v in found]


def dispatch_once(client: redis.Redis, app: Celery, settings: Settings) -> int:
    """Send a delivery task for each due callback; how many were sent."""
    if queue_depth(client, CALLBACKS_QUEUE) >= MAX_WAITING:
        return 0
    claimed = claim_due(client, settings.webhook_lease_seconds)
    for job_id in claimed[1:]:
        app.send_task(DELIVER_CALLBACK_TASK, args=[job_id, claimed[0]])
    return len(claimed[1:])


def dispatch_loop(
    client: redis.Redis, app: Celery, settings: Settings, stop: threading.Event
) -> None:
    """Dispatch every DISPATCH_EVERY_SECONDS until `stop` is set."""
    while not stop.wait(DISPATCH_EVERY_SECONDS):
        try:
            dispatch_once(client, app, settings)
        except Exception as exc:  # Redis away for a moment: the next round tries again
            logger.warning("could not dispatch callbacks: %s", exc)


def event_body(job: Job, results: ResultFiles) -> bytes:
    """The JSON POSTed for `job` (the same on every attempt): what GET returns, enveloped."""
    if job.result_in_file:
        job.result = results.read(job.job_id)
    data = job.model_dump(mode="json", exclude={"callback"})
    body = _envelope(job, data, omitted=False)
    if len(body) > MAX_BODY_BYTES:
        body = _envelope(job, {**data, "result": None}, omitted=True)
    return body


def _envelope(job: Job, data: dict[str, object], omitted: bool) -> bytes:
    envelope = {
        "type": f"job.{job.status.value}",
        "timestamp": (job.finished_at or datetime.now(UTC)).isoformat(),
        "result_omitted": omitted,
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def next_delay(attempts: int, settings: Settings, asked: float | None = None) -> float:
    """Seconds before attempt `attempts + 1`: exponential with full jitter, at least what the
    receiver asked for (Retry-After), at most MAX_DELAY_SECONDS."""
    ceiling = min(MAX_DELAY_SECONDS, settings.webhook_backoff_seconds * 2 ** min(attempts - 1, 32))
    return min(MAX_DELAY_SECONDS, max(random.uniform(0, ceiling), asked or 0))


def message_id(job_id: str) -> str:
    """`webhook-id`: one per job's end, the same on every attempt (receivers drop repeats)."""
    return f"msg_{job_id}"


def deliver(
    store: JobStore, results: ResultFiles, settings: Settings, job_id: str, claim: str
) -> str:
    """Make one attempt at the delivery of `job_id` held by `claim`; what came of it."""
    client = store.redis
    if not client.eval(_HOLDS, 1, CALLBACKS_DUE, job_id, claim):
        return "stale"  # delivered twice, or claimed again since
    job = store.get(job_id)
    if job is None or job.callback_url is None or job.finished_at is None:
        client.zrem(CALLBACKS_DUE, job_id)
        return "gone"
    before = job.callback or CallbackState(state="pending")
    secret = settings.webhook_secret_for(job.owner)
    if secret is None:
        attempt = Attempt(None, "no webhook secret is set (IRISQ_WEBHOOK_SECRET)")
    else:
        body = event_body(job, results)
        headers = signed_headers(secret, message_id(job_id), int(time.time()), body)
        attempt = post(job.callback_url, headers, body, settings)
    now = datetime.now(UTC)
    state = CallbackState(
        state="pending",
        attempts=before.attempts + 1,
        last_status=attempt.status,
        last_error=attempt.error,
    )
    delay: float | None = None
    window_end = job.finished_at + timedelta(seconds=settings.webhook_retry_seconds)
    if attempt.delivered:
        state.state, state.delivered_at = "delivered", now
    elif attempt.retry and now < window_end:
        delay = next_delay(state.attempts, settings, attempt.retry_after)
        delay = min(delay, (window_end - now).total_seconds())  # the last try ends the window
        state.next_attempt_at = now + timedelta(seconds=delay)
    else:
        state.state = "failed"
        if attempt.retry:
            state.last_error = f"{attempt.error}; gave up after {state.attempts} attempts"
    settled = client.eval(
        _SETTLE,
        2,
        CALLBACKS_DUE,
        store.key(job_id),
        job_id,
        claim,
        state.model_dump_json(),
        "" if delay is None else repr(delay),
    )
    outcome = state.state if settled else "stale"
    log = logger.info if attempt.delivered or delay is not None else logger.warning
    log(
        "callback %s (attempt %d: %s)",
        outcome,
        state.attempts,
        attempt.status or attempt.error,
        extra={"job_id": job_id},
    )
    return outcome
