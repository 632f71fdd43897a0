"""Commands sent now whose replies are read later: a Redis round trip overlapped with work.

A prediction's worker marks its jobs started before it scores them, and the mark need not
be confirmed before the model runs, only before a result is stored. So the marks go out
first, the model runs while Redis applies them, and their replies are read after: a round
trip less in each prediction's time. Redis applies commands in the order they arrive,
whatever becomes of their sender once the bytes are sent: a worker killed while its model
runs has still counted the attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import redis
from redis.connection import Connection
from redis.typing import EncodableT

Command = tuple[EncodableT, ...]
Reply = TypeVar("Reply")


class RepliesLater(Generic[Reply]):
    """Sends `commands` on a connection of their own at once; `replies()` reads their
    replies, in order, once, each through `parse`. Leaving the `with` block without reading
    them closes the connection (replies left on it would be read by its next user)."""

    def __init__(
        self, client: redis.Redis, commands: list[Command], parse: Callable[[Any], Reply]
    ) -> None:
        self._parse = parse
        self._pool = client.connection_pool
        self._count = len(commands)
        self._read = False
        self._connection: Connection | None = self._pool.get_connection() if commands else None
        if self._connection is None:
            return
        try:
            packed = self._connection.pack_commands(commands)  # type: ignore[no-untyped-call]
            self._connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
        except BaseException:
            self._release(broken=True)
            raise

    def __enter__(self) -> RepliesLater[Reply]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release(broken=True)  # a no-op once the replies were read

    def replies(self) -> list[Reply]:
        """The commands' replies; an error reply is raised (then the rest are not read).

        Unlike redis-py's own calls, a lost connection is not retried: the commands may
        have run (a start counts an attempt), so the error goes to the caller."""
        if self._read:
            raise RuntimeError("the replies were read already")
        self._read = True
        if self._connection is None:
            return []
        try:
            answers = [self._connection.read_response() for _ in range(self._count)]
        except BaseException:
            self._release(broken=True)
            raise
        self._release(broken=False)
        return [self._parse(answer) for answer in answers]

    def _release(self, broken: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if broken:
                connection.disconnect()  # type: ignore[no-untyped-call]
        finally:
            self._pool.release(connection)
