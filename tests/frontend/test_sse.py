"""The Server-Sent Events reader, on the text format's corner cases (WHATWG HTML, 9.2)."""

from __future__ import annotations

from frontend.sse import Event, EventParser


def _events(text: str) -> list[Event]:
    parser = EventParser()
    found = [parser.feed(line) for line in text.split("\n")]
    return [event for event in found if event is not None]


def test_the_apis_stream_reads_as_sent() -> None:
    text = (
        "retry: 2000\n\n"
        'id: 1-0\nevent: progress\ndata: {"progress":0.5}\n\n'
        ": keep-alive\n\n"
        'event: status\ndata: {"status":"succeeded"}\n\n'
    )
    parser = EventParser()
    events = [e for e in (parser.feed(line) for line in text.split("\n")) if e is not None]

    assert events == [
        Event("progress", '{"progress":0.5}', "1-0"),
        Event("status", '{"status":"succeeded"}', "1-0"),  # the id stays in effect
    ]
    assert parser.retry_milliseconds == 2000
    assert parser.last_id == "1-0"


def test_data_lines_join_with_newlines_and_one_space_after_the_colon_goes() -> None:
    assert _events("data:first\ndata:  second\ndata\n\n") == [
        Event("message", "first\n second\n", None)
    ]


def test_comments_unknown_fields_and_events_without_data_are_not_events() -> None:
    assert _events(": hello\nfoo: bar\n\nevent: lonely\n\nretry: soon\n\n") == []


def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert _events("event: status\ndata: {}") == []


def test_an_empty_id_clears_it_and_an_id_with_nul_is_ignored() -> None:
    text = "id: 7-1\ndata: x\n\nid: 8\0\ndata: y\n\nid:\ndata: z\n\n"
    assert _events(text) == [
        Event("message", "x", "7-1"),
        Event("message", "y", "7-1"),
        Event("message", "z", None),
    ]


def test_a_byte_order_mark_opening_the_stream_is_skipped() -> None:
    assert _events("\ufeffevent: status\ndata: {}\n\n") == [Event("status", "{}", None)]


def test_an_id_counts_once_its_event_is_complete() -> None:
    parser = EventParser()
    for line in ["id: 1-0", "data: x", "", "id: 2-0", "event: progress"]:
        parser.feed(line)
    assert parser.last_id == "1-0"  # a stream cut here resumes before event 2-0
