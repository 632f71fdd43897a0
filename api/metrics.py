"""Prometheus `/metrics`: request latency, submissions, queue depth, workers, job metrics.

Request metrics are counted in this process; queue depth and live workers are read from
Redis at scrape time; job durations and predictions are the totals workers wrote to Redis
(irisq.metrics), so one scrape of any API instance sees every worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import redis
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import AccessLog
from api.deps import MetricsDep
from api.model_metrics import model_families
from irisq import metrics
from irisq.tasks import WORKER_QUEUES
from irisq.workers import live_workers

router = APIRouter(tags=["health"])


Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily
# Anyone may scrape: however often they do, Redis is read at most once a second.
CACHE_SECONDS = 1.0


class RedisCollector(Collector):
    """Reads the shared state at scrape time; a Redis outage shows as `irisq_redis_up 0`."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Family]] = (float("-inf"), [])

    def collect(self) -> Iterator[Family]:
        with self._lock:
            read_at, families = self._cached
            if time.monotonic() - read_at >= CACHE_SECONDS:
                families = self._read()
                self._cached = (time.monotonic(), families)
        yield from families

    def _read(self) -> list[Family]:
        up = GaugeMetricFamily("irisq_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._from_redis())
        except redis.RedisError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _from_redis(
        self,
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        depth = GaugeMetricFamily("irisq_queue_depth", "Tasks waiting in a queue", labels=["queue"])
        workers = GaugeMetricFamily(
            "irisq_workers", "Workers with a recent heartbeat", labels=["queue"]
        )
        for queue in WORKER_QUEUES:
            depth.add_metric([queue], self.client.llen(queue))
            workers.add_metric([queue], len(live_workers(self.client, queue)))
        yield depth
        yield workers
        durations = HistogramMetricFamily(
            "irisq_job_duration_seconds", "Time a worker spent on a job", labels=["kind", "status"]
        )
        for kind, status, buckets, total in metrics.job_histograms(self.client):
            durations.add_metric([kind, status], buckets, total)
        yield durations
        predicted = CounterMetricFamily(
            "irisq_predictions", "Rows predicted", labels=["model_version", "species"]
        )
        for version, species, count in metrics.predictions(self.client):
            predicted.add_metric([version, species], count)
        yield predicted
        yield from model_families(self.client)


class RequestTimer:
    """Times every HTTP request by method, route template and status, and tells the access
    log (api.access_log) how it ended."""

    def __init__(self, app: ASGIApp, latency: Histogram, access_log: AccessLog) -> None:
        self.app = app
        self.latency = latency
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.latency.labels(scope["method"], template, str(status)).observe(seconds)
            client = scope.get("client")
            self.access_log.note(
                scope["method"],
                scope.get("raw_path") or scope["path"].encode(),
                client[0] if client else "-",
                status,
                seconds,
            )


def new_registry(client: redis.Redis) -> CollectorRegistry:
    """A registry for one app (not the global one: tests build many apps), reading what
    Redis holds at scrape time."""
    registry = CollectorRegistry()
    registry.register(RedisCollector(client))
    return registry


def time_requests(app: FastAPI, registry: CollectorRegistry, access_log: AccessLog) -> None:
    """The middleware that times every request by its route template (and logs them)."""
    latency = Histogram(
        "irisq_http_request_duration_seconds",
        "Time to answer a request",
        ["method", "route", "status"],
        registry=registry,
    )
    # A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per
    # request, a noticeable share of a small request's time.
    app.add_middleware(RequestTimer, latency=latency, access_log=access_log)


def micro_batch_observer(registry: CollectorRegistry) -> Callable[[int, int], None]:
    """Histograms of the micro-batches the API forms: jobs and rows per group sent."""
    sizes = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    jobs = Histogram(
        "irisq_micro_batch_jobs", "Prediction jobs per task sent", buckets=sizes, registry=registry
    )
    rows = Histogram(
        "irisq_micro_batch_rows", "Rows per task sent", buckets=sizes, registry=registry
    )

    def observe(job_count: int, row_count: int) -> None:
        jobs.observe(job_count)
        rows.observe(row_count)

    return observe


@router.get("/metrics", include_in_schema=False)
def get_metrics(registry: MetricsDep) -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
