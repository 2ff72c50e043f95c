"""The body-read deadline of every webhook request (`[ingress] body_timeout_seconds`, answered 408), without a
timer per request.

`asyncio.timeout(seconds)` arms a loop timer on entry and disarms it on exit, for every request, although a
webhook body almost always arrives with its headers and is read in microseconds. Here each read enters an
`asyncio.timeout(None)` (no timer) and is noted with its deadline; one ticker per process, running every
`tick` seconds while reads are noted, gives the reads whose deadline falls before its next tick their exact
timer then. So a read that outlives its deadline is cut at that deadline, exactly as with `asyncio.timeout`
(a TimeoutError out of the `async with`), and only a read still going a tick before its deadline ever costs a
timer.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class BodyDeadlines:
    def __init__(self, timeout: float, tick: float | None = None) -> None:
        self.timeout = timeout
        self.tick = tick if tick is not None else min(timeout / 4, 1.0)
        self._reads: dict[asyncio.Timeout, float] = {}
        self._ticker: asyncio.TimerHandle | None = None

    def read(self) -> _Read:
        """`async with deadlines.read(): ...` raises TimeoutError when the block outlives `timeout`."""
        return _Read(self)

    def _note(self, cm: asyncio.Timeout, loop: asyncio.AbstractEventLoop) -> None:
        self._reads[cm] = loop.time() + self.timeout
        if self._ticker is None:
            self._ticker = loop.call_later(self.tick, self._on_tick, loop)

    def _on_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        horizon = loop.time() + self.tick
        due = [(cm, deadline) for cm, deadline in self._reads.items() if deadline <= horizon]
        for cm, deadline in due:
            del self._reads[cm]
            cm.reschedule(deadline)  # a past deadline fires at once
        self._ticker = loop.call_later(self.tick, self._on_tick, loop) if self._reads else None


class _Read:
    __slots__ = ("_cm", "_deadlines")

    def __init__(self, deadlines: BodyDeadlines) -> None:
        self._deadlines = deadlines
        self._cm = asyncio.timeout(None)

    async def __aenter__(self) -> None:
        await self._cm.__aenter__()
        self._deadlines._note(self._cm, asyncio.get_running_loop())

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        self._deadlines._reads.pop(self._cm, None)
        return await self._cm.__aexit__(kind, exc, tb)
