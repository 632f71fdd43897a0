"""Following a job on its event stream (client.follow_job), the API faked at the HTTP boundary:
progress in order, the final job, a dropped or ended stream resumed after its last event."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from frontend import client
from tests.frontend.conftest import ended, job, progress, sse, stream

JOB = "e0000000-0000-4000-8000-000000000001"
EVENTS = f"/v1/jobs/{JOB}/events"
DONE = job(JOB, "batch", "succeeded", stage="done")


class Dropped(httpx.SyncByteStream):
    """A stream whose connection breaks after `body` (as a restarted API or proxy does)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def _follow(**kwargs: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    final = client.follow_job(JOB, seen.append, headers={}, **{"deadline_seconds": 10, **kwargs})
    return final, seen


def test_progress_comes_in_order_then_the_whole_final_job(api: respx.MockRouter) -> None:
    body = sse(progress(JOB, 0.25, "scoring", "1-0"), progress(JOB, 0.75, "scoring", "2-0"))
    route = api.get(EVENTS).mock(return_value=stream(body + b": keep-alive\n\n" + sse(ended(DONE))))

    final, seen = _follow()

    assert final == DONE
    assert [update["progress"] for update in seen] == [0.25, 0.75]
    sent = route.calls.last.request.headers
    assert sent["Accept"] == "text/event-stream"
    assert "Last-Event-ID" not in sent


def test_a_dropped_stream_is_resumed_after_its_last_event(api: respx.MockRouter) -> None:
    first = sse(progress(JOB, 0.25, "scoring", "1-0"), progress(JOB, 0.5, "scoring", "2-0"))
    route = api.get(EVENTS).mock(
        side_effect=[
            httpx.Response(200, stream=Dropped(first + b"id: 3-0\nevent: progress\ndata: {")),
            stream(sse(progress(JOB, 0.75, "scoring", "3-0"), ended(DONE))),
        ]
    )

    final, seen = _follow()

    assert final == DONE
    assert [update["progress"] for update in seen] == [0.25, 0.5, 0.75]  # the cut one: again
    assert route.calls[1].request.headers["Last-Event-ID"] == "2-0"


def test_a_stream_the_api_ended_early_is_resumed_too(api: respx.MockRouter) -> None:
    # The API ends a stream after IRISQ_EVENTS_MAX_SECONDS; the client carries on.
    route = api.get(EVENTS).mock(
        side_effect=[
            stream(sse(progress(JOB, 0.5, "scoring", "5-0"))),
            stream(sse(ended(DONE))),
        ]
    )

    assert _follow()[0] == DONE
    assert route.calls[1].request.headers["Last-Event-ID"] == "5-0"


def test_a_refusal_is_said_at_once_and_not_retried(api: respx.MockRouter) -> None:
    route = api.get(EVENTS).respond(404, json={"title": "Not Found", "detail": "no job 'e0'"})

    with pytest.raises(client.ApiError, match="no job 'e0'"):
        _follow()
    assert route.call_count == 1


def test_a_deleted_job_says_so(api: respx.MockRouter) -> None:
    api.get(EVENTS).mock(return_value=stream(sse(("deleted", {"job_id": JOB}, None))))

    with pytest.raises(client.JobDeletedError, match="was deleted"):
        _follow()


def test_an_api_away_for_a_few_attempts_is_an_error(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "EVENTS_RETRY_SECONDS", 0.01)
    route = api.get(EVENTS).mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(client.ApiError, match="cannot be reached"):
        _follow()
    assert route.call_count == client.EVENTS_CONNECT_ATTEMPTS


def test_past_the_deadline_the_answer_is_none(api: respx.MockRouter) -> None:
    quiet = stream(sse(progress(JOB, 0.0, "queued", "1-0"), retry_ms=50) + b": keep-alive\n\n")
    api.get(EVENTS).mock(side_effect=lambda request: quiet)
    started = time.monotonic()

    final, seen = _follow(deadline_seconds=0.3)

    assert final is None
    assert seen  # what it saw meanwhile
    assert time.monotonic() - started < 2


def test_a_stop_request_ends_following(api: respx.MockRouter) -> None:
    stop = threading.Event()

    def asked_to_stop(request: httpx.Request) -> httpx.Response:
        stop.set()  # as the page does when a click stops its run
        return stream(sse())

    api.get(EVENTS).mock(side_effect=asked_to_stop)

    assert _follow(stop=stop) == (None, [])
