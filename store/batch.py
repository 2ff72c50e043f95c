"""Coalescing Redis writes: commands submitted in the same event-loop turn share one pipeline round trip.

Each caller still awaits its own commands' results, so "acknowledged" keeps its meaning: a caller resumes
only after Redis answered for what it submitted. PERF-NOTES: per-command client overhead drops from ~85 us
unpipelined to ~11-20 us in pipelines of 8-32.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

Queue = Callable[[Pipeline], int]
"""Adds commands to a pipeline and returns how many it added."""


class PipelineBatcher:
    def __init__(self, redis: Redis, *, max_batch: int = 256) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._pending: list[tuple[Queue, asyncio.Future[list[Any]]]] = []
        self._scheduled = False

    async def submit(self, queue: Queue) -> list[Any]:
        """Run the commands that `queue` adds in the next shared pipeline; their replies, in order.
        A reply that is an error is raised here (redis-py's exception)."""
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((queue, fut))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)
        results = await fut
        for item in results:
            if isinstance(item, Exception):
                raise item
        return results

    def _flush_soon(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for i in range(0, len(batch), self.max_batch):
            asyncio.ensure_future(self._flush(batch[i : i + self.max_batch]))

    async def _flush(self, batch: list[tuple[Queue, asyncio.Future[list[Any]]]]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                counts = [queue(pipe) for queue, _ in batch]
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # connection errors fail every caller of this round trip
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for (_, fut), count in zip(batch, counts, strict=True):
            if not fut.done():
                fut.set_result(list(replies[start : start + count]))
            start += count


def queue_script(pipe: Pipeline, script: Any, keys: list[str], args: list[Any]) -> int:
    """Add a registered Lua script to a pipeline (loaded first if Redis lost it, e.g. after a restart)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys), *keys, *args)
    return 1
