"""The API's front door: a pure ASGI layer that refuses before anything does work.

For each request, in this order, with nothing read past the headers until the end:
1. the declared body size against the route's limit (413);
2. the API key (401), failed attempts limited per client address (429);
3. the key's requests in flight in this process (429) and its rate, in Redis (429);
4. for submissions: Redis memory admission (503), the key's quotas (429) and the depth of
   the queue it would feed (503);
then the app runs, reading a body that is still held to the size limit, to an idle timeout
and to a minimum average speed (413, 408). A request without a valid key costs its headers.
The caller and its usage are left in the request state for the routes (api.auth).

One module, past the ~250 lines we aim for, because the order of these refusals is the
security argument: read top to bottom, it is the order a request meets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import defaultdict
from dataclasses import dataclass

from redis.exceptions import RedisError
from starlette.datastructures import Headers, State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.problems import RETRY_AFTER_SECONDS, is_scoring_path, problem_bytes, unavailable_detail
from api.ratelimit import Gcra
from api.resources import resources_of
from api.submission import queue_full_detail
from api.upload import FRAMING_ALLOWANCE
from irisq.keys import ANONYMOUS, Caller, KeyRing
from irisq.settings import Settings
from irisq.tasks import BATCH_TASK, PREDICT_GROUP_TASK, TASK_QUEUES, TRAIN_TASK

SMALL_BODY_BYTES = 64 * 1024  # any route that takes no submission
# The routes anyone may call: probes, the scoring protocol's probes, the documentation.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/ping", "/health", "/version"}
    | {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
# Per client address: probes and docs (each cached or static). Generous, since a frontend
# or a load balancer asks for all its users from one address.
OPEN_PATHS_PER_SECOND = 200


@dataclass(frozen=True)
class Policy:
    """What one route accepts before it runs."""

    max_bytes: int
    too_large: str  # the 413's detail
    submission: str | None = None  # "rows", "upload" or "training": quotas apply
    queue: str | None = None  # a submission's: the queue its task goes to


class BodyRefusedError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def policies(settings: Settings) -> dict[tuple[str, str], Policy]:
    upload = settings.batch_max_bytes
    return {
        ("POST", "/v1/predictions"): Policy(
            settings.request_max_bytes,
            f"the body is larger than the limit of {settings.request_max_bytes:,} bytes",
            "rows",
            TASK_QUEUES[PREDICT_GROUP_TASK],
        ),
        ("POST", "/invocations"): Policy(
            settings.invocations_max_bytes,
            f"the body is larger than the limit of {settings.invocations_max_bytes:,} bytes",
            "rows",
            TASK_QUEUES[PREDICT_GROUP_TASK],
        ),
        ("POST", "/v1/batches"): Policy(
            upload + FRAMING_ALLOWANCE,
            f"the file is larger than the limit of {upload:,} bytes",
            "upload",
            TASK_QUEUES[BATCH_TASK],
        ),
        ("POST", "/v1/training"): Policy(
            SMALL_BODY_BYTES,
            f"the body is larger than the limit of {SMALL_BODY_BYTES:,} bytes",
            "training",
            TASK_QUEUES[TRAIN_TASK],
        ),
    }


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        keys: KeyRing,
        state: State,
        keyless: Caller | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        # The scoring listener's: every request is this caller, with or without a key.
        self.keyless = keyless
        # The app's state, for its resources (api.resources) once it has started: FastAPI's
        # dependencies do not reach a layer that runs before routing.
        self.state = state
        self.policies = policies(settings)
        self.default_policy = Policy(
            SMALL_BODY_BYTES, f"the body is larger than the limit of {SMALL_BODY_BYTES:,} bytes"
        )
        per_minute = settings.auth_failures_per_minute
        self.failures = Gcra(per_minute / 60, per_minute)
        self.open_paths = Gcra(OPEN_PATHS_PER_SECOND, OPEN_PATHS_PER_SECOND)
        self.in_flight: defaultdict[str, int] = defaultdict(int)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        policy = self.policies.get((method, _route_of(path)), self.default_policy)
        declared = headers.get("content-length", "")
        has_body = _has_body(headers)
        # A refusal leaves the body unread: the connection closes, or it would be read next.
        refuse = functools.partial(_refuse, send, path=path, close=has_body)
        if declared.isdigit() and int(declared) > policy.max_bytes:
            await refuse(413, policy.too_large)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if path in OPEN_PATHS or method == "OPTIONS":  # CORS preflights carry no key
            verdict = self.open_paths.check(client)
            if not verdict.allowed:
                await refuse(429, "too many requests from this address", verdict.retry_after)
                return
            await self._run(scope, receive, send, policy, has_body)
            return
        caller, bucket = self._authenticate(headers, client)
        if caller is None:
            verdict = self.failures.check(client)
            if not verdict.allowed:
                await refuse(429, "too many requests without a valid API key", verdict.retry_after)
            else:
                await refuse(401, bucket, challenge=True)
            return
        if self.in_flight[caller.name] >= self.settings.max_requests_in_flight_per_key:
            await refuse(
                429,
                f"{self.settings.max_requests_in_flight_per_key} requests of this key are "
                "already being served; wait for one to end",
                1,
            )
            return
        self.in_flight[caller.name] += 1
        try:
            try:
                refusal = await self._admit(caller, bucket, policy, headers, scope)
            except RedisError as exc:  # the rate limit lives in Redis: answer as routes do
                refusal = (503, unavailable_detail(exc), RETRY_AFTER_SECONDS)
            if refusal is not None:
                await refuse(*refusal)
                return
            await self._run(scope, receive, send, policy, has_body)
        finally:
            self.in_flight[caller.name] -= 1
            if not self.in_flight[caller.name]:
                del self.in_flight[caller.name]

    def _authenticate(self, headers: Headers, client: str) -> tuple[Caller | None, str]:
        """(caller, rate bucket), or (None, why) when the key is missing or wrong."""
        if self.keyless is not None:
            return self.keyless, self.keyless.name
        if self.keys.open:
            return ANONYMOUS, f"anonymous@{client}"
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None, "an API key is required: Authorization: Bearer <key>"
        caller = self.keys.caller(secret.strip())
        if caller is None:
            return None, "this API key is not valid"
        return caller, caller.name

    async def _admit(
        self,
        caller: Caller,
        bucket: str,
        policy: Policy,
        headers: Headers,
        scope: Scope,
    ) -> Refusal | None:
        """The refusal to send, or None: rate limit, then (submissions) Redis's memory, the
        key's quotas and the depth of the queue."""
        declared = headers.get("content-length", "")
        retry = IDEMPOTENCY_HEADER in headers
        limiter = resources_of(self.state).rate_limiter
        verdict = await limiter.check(bucket, caller.name, policy.queue)
        if not verdict.allowed:
            detail = f"more than {limiter.per_second} requests a second with this key; slow down"
            return 429, detail, verdict.retry_after
        state = scope.setdefault("state", {})
        state["caller"] = caller
        if policy.submission is None:
            return None
        admission = resources_of(self.state).admission
        full = await admission.refusal()
        if full is not None:
            return 503, full, admission.retry_after_seconds
        # What this submission will write to Redis, until memory is read again: its JSON
        # body (rows travel in the task and the record); an upload goes to disk instead.
        if policy.submission != "rows":
            admission.note(1024)  # an upload goes to disk; a training is a few fields
        else:
            admission.note(int(declared) if declared.isdigit() else policy.max_bytes)
        usage = verdict.usage
        state["usage"] = usage
        if usage is None:
            return None
        quota = self.settings.quota_jobs_in_flight
        if usage.jobs >= quota:
            detail = (
                f"this key has {usage.jobs:,} jobs queued or running, its quota is {quota:,}: "
                "wait for some to end (or cancel them)"
            )
            return 429, detail, 1
        if policy.submission == "upload":
            size = int(declared) if declared.isdigit() else 0
            stored = self.settings.quota_stored_bytes
            if usage.bytes + size > stored:
                detail = stored_quota_detail(usage.bytes, size, stored)
                return 429, detail, 60
        # A full queue, refused before the body is read; the route checks again as it pushes
        # (requests admitted together all see room). A retry with an
        # Idempotency-Key goes on: its route answers with the job it already made, if any.
        if policy.queue and usage.queue_depth >= self.settings.max_queue_depth and not retry:
            return 503, queue_full_detail(policy.queue, usage.queue_depth), RETRY_AFTER_SECONDS
        return None

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, policy: Policy, has_body: bool
    ) -> None:
        """Run the app with the body held to the route's size limit and to time limits."""
        if not has_body:
            await self.app(scope, receive, send)  # no body to watch
            return
        body = _BodyWatch(
            receive,
            policy,
            self.settings.body_idle_timeout_seconds,
            self.settings.body_min_bytes_per_second,
            self.settings.body_grace_seconds,
        )
        started = False

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if body.refused is not None:
                return  # the app answers the broken read; ours goes out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # The app may let our read error through: then it is answered below.
        with contextlib.suppress(BodyRefusedError):
            await self.app(scope, body.receive, send_unless_refused)
        if body.refused is not None and not started:
            await _refuse(
                send, body.refused.status, body.refused.detail, path=scope["path"], close=True
            )


Refusal = tuple[int, str, int]  # status, detail, Retry-After seconds


def _route_of(path: str) -> str:
    """The path whose policy applies: the deployments client's scoring route is `/invocations`
    under another name."""
    return "/invocations" if is_scoring_path(path) else path


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def stored_quota_detail(used: int, size: int, quota: int) -> str:
    return (
        f"this key stores {used:,} bytes of files and this upload would add {size:,}: its "
        f"quota is {quota:,} bytes. Files are removed when their jobs expire or are canceled"
    )


class _BodyWatch:
    """Wraps `receive`: the body may not exceed the limit, stall, or crawl."""

    def __init__(
        self,
        receive: Receive,
        policy: Policy,
        idle_seconds: float,
        min_bytes_per_second: int,
        grace_seconds: float,
    ) -> None:
        self._receive = receive
        self._policy = policy
        self._idle = idle_seconds
        self._min_rate = min_bytes_per_second
        self._grace = grace_seconds
        self._received = 0
        self._started = time.monotonic()
        self._done = False
        self.refused: BodyRefusedError | None = None

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        if self._done:
            return await self._receive()  # after the body: a disconnect, whenever it comes
        try:
            async with asyncio.timeout(self._idle):
                message = await self._receive()
        except TimeoutError:
            self._refuse(408, f"the body stalled: nothing arrived for {self._idle:g} s")
            raise self.refused from None  # type: ignore[misc]
        if message["type"] != "http.request":
            return message
        self._received += len(message.get("body", b""))
        self._done = not message.get("more_body", False)
        if self._received > self._policy.max_bytes:
            self._refuse(413, self._policy.too_large)
        elif not self._done and self._too_slow():
            self._refuse(
                408,
                f"the body arrives too slowly (under {self._min_rate:,} bytes a second); "
                "send it faster or in a smaller request",
            )
        if self.refused is not None:
            raise self.refused
        return message

    def _too_slow(self) -> bool:
        elapsed = time.monotonic() - self._started
        if not self._min_rate or elapsed < self._grace:
            return False
        return self._received < self._min_rate * (elapsed - self._grace)

    def _refuse(self, status: int, detail: str) -> None:
        self.refused = BodyRefusedError(status, detail)


async def _refuse(
    send: Send,
    status: int,
    detail: str,
    retry_after: int | None = None,
    challenge: bool = False,
    close: bool = False,
    path: str = "",
) -> None:
    """A problem+json answer sent straight from the ASGI layer (no routing, no parsing)."""
    body = problem_bytes(status, detail, path)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(retry_after, 1)).encode()))
    if challenge:
        headers.append((b"www-authenticate", b"Bearer"))
    if close:  # the unread body would otherwise be taken for the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
