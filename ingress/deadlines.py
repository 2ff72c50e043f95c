"""The body-read deadline of every webhook request (`[ingress] body_timeout_seconds`, answered 408), without a
timer per request.

`asyncio.timeout(seconds)` arms a loop timer on entry and disarms it on exit, for every request, although a
webhook body almost always arrives with its headers and is read in microseconds; its context manager alone
costs more than the read (bench/README.md). Here a read notes its task and its deadline in a dict; one ticker
per process, running every `tick` seconds while reads are noted, gives each read whose deadline falls before
its next tick an exact timer then. At the deadline a read still going has its task cancelled, and
`read_within` turns that cancellation, and only that one, into TimeoutError, as `asyncio.timeout` does (a
cancellation from elsewhere passes through unchanged). So only a read still going a tick before its deadline
ever costs a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class BodyDeadlines:
    def __init__(self, timeout: float, tick: float | None = None) -> None:
        self.timeout = timeout
        self.tick = tick if tick is not None else min(timeout / 4, 1.0)
        self._reads: dict[asyncio.Task[object], float] = {}
        self._timed: dict[asyncio.Task[object], float] = {}
        """Reads given their own timer by a tick, still going."""
        self._expired: set[asyncio.Task[object]] = set()
        self._ticker: asyncio.TimerHandle | None = None

    async def read_within(self, read: Awaitable[T]) -> T:
        """`await read`, or TimeoutError when it has not ended `timeout` seconds from now."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        cancelling = task.cancelling()
        self._reads[task] = loop.time() + self.timeout
        if self._ticker is None:
            self._ticker = loop.call_later(self.tick, self._on_tick, loop)
        try:
            return await read
        except asyncio.CancelledError:
            if task in self._expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._reads.pop(task, None)
            self._timed.pop(task, None)
            self._expired.discard(task)

    def _on_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        horizon = loop.time() + self.tick
        for task, deadline in [(t, d) for t, d in self._reads.items() if d <= horizon]:
            del self._reads[task]
            self._timed[task] = deadline
            loop.call_at(deadline, self._expire, task, deadline)
        self._ticker = loop.call_later(self.tick, self._on_tick, loop) if self._reads else None

    def _expire(self, task: asyncio.Task[object], deadline: float) -> None:
        if self._timed.get(task) == deadline:  # still in the read that deadline belongs to
            self._expired.add(task)
            task.cancel()
