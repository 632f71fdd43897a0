"""Connections as uvicorn accepts them, bounded: `uvicorn --http api.connections:Protocol`.

uvicorn waits for a request head for as long as a client cares to send it (its keep-alive
timeout starts only after a response), and accepts any number of connections from one
address. So a few hundred clients trickling a header byte every few seconds would hold
connections forever. This protocol (uvicorn's httptools one) closes a connection that has
not sent a whole request head within IRISQ_HEADER_TIMEOUT_SECONDS, and refuses more than
IRISQ_MAX_CONNECTIONS_PER_CLIENT at once from one address. Bodies are the guard's (api.guard).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from irisq.settings import get_settings

logger = logging.getLogger("irisq.api")


class Protocol(HttpToolsProtocol):
    # Per process: every connection of this server, by client address.
    open_by_client: ClassVar[defaultdict[str, int]] = defaultdict(int)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._head_seconds = settings.header_timeout_seconds
        self._per_client = settings.max_connections_per_client
        self._head_timer: asyncio.TimerHandle | None = None
        self._address: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else "unknown"
        Protocol.open_by_client[self._address] += 1
        if Protocol.open_by_client[self._address] > self._per_client:
            logger.warning("refused a connection: %s has too many open", self._address)
            transport.close()
            return
        self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._address is not None:
            Protocol.open_by_client[self._address] -= 1
            if Protocol.open_by_client[self._address] <= 0:
                del Protocol.open_by_client[self._address]
            self._address = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait_for_head()  # a keep-alive connection's next request: its own deadline

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def _wait_for_head(self) -> None:
        self._stop_waiting()
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_too_slow)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
