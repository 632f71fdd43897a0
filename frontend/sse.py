"""Server-Sent Events, read line by line as the WHATWG HTML standard tells a browser to.

No HTTP here (frontend.client reads the stream): only the text format. Lines come already
split (httpx splits on CRLF, LF and CR alike, as the format allows). A field line is
`name: value` (one space after the colon is dropped), a line starting with `:` is a comment
(the API's keep-alive), and a blank line ends an event. An `id` counts once its event is
complete (a stream cut inside an event must be resumed before that event, not after it) and
stays in effect across events, as in EventSource: a reconnection sends it as `Last-Event-ID`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    name: str  # "message" when the event had no `event:` line
    data: str  # its `data:` lines, joined with newlines
    id: str | None  # the last event id in effect when it was dispatched


@dataclass
class EventParser:
    """Feed it the stream's lines; it hands back each complete event."""

    last_id: str | None = None  # of the last complete event
    retry_milliseconds: int | None = None  # the server's advice for reconnecting
    _id: str | None = None  # read, for the event under way
    _name: str = ""
    _data: list[str] = field(default_factory=list)
    _started: bool = False

    def feed(self, line: str) -> Event | None:
        """The event this line completes, if it is the blank line ending one with data."""
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")  # a byte order mark may open the stream
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._name = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value or None  # an empty id clears it
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_milliseconds = int(value)
        return None  # other fields are ignored, as the standard says

    def _dispatch(self) -> Event | None:
        self.last_id = self._id
        data, name = self._data, self._name
        self._data, self._name = [], ""
        if not data:  # e.g. a lone `retry:` or `id:` block: nothing to hand on
            return None
        return Event(name or "message", "\n".join(data), self.last_id)
