"""Putting events where a worker will find them: one atomic Lua script per accepted event.

The script sets the dedupe marker (NX), stores the event body, and enqueues an arq job in arq's own format
(job key + queue entry), so stock arq workers consume it. A duplicate (source, id) writes nothing.
Jobs are JSON (orjson), never pickle: `{"t": try, "f": function, "a": [source, event_id], "k": {}, "et": ms}`.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from config.settings import DeliverySettings
from core.clock import Clock, system_clock
from store.batch import PipelineBatcher, WaitReplicas, queue_script
from store.keys import Keys

DELIVER = "deliver"
"""The arq function name of the per-event delivery job."""

_DAY = 86_400

ACCEPT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('PSETEX', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
return 1
"""


def job_bytes(source: str, event_id: str, enqueue_ms: int) -> bytes:
    return orjson.dumps({"t": None, "f": DELIVER, "a": [source, event_id], "k": {}, "et": enqueue_ms})


def delivery_horizon_seconds(delivery: DeliverySettings) -> int:
    """Longest time an event's delivery can take: every wait at its most jittered, every try at its
    longest, plus a day of slack. arq's job key and our event key must live at least this long."""
    waits = sum(delivery.schedule_seconds) * (1 + delivery.jitter)
    tries = delivery.max_tries * (delivery.timeout_seconds * 4 + 30)
    return int(waits + tries) + _DAY


class Intake:
    def __init__(self, redis: Redis, keys: Keys, delivery: DeliverySettings, clock: Clock = system_clock) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.dedupe_seconds = delivery.dedupe_seconds
        horizon = delivery_horizon_seconds(delivery)
        self.event_ttl = max(self.dedupe_seconds, horizon) + _DAY
        self.job_ttl_ms = horizon * 1000
        self._accept = redis.register_script(ACCEPT_LUA)

    def accept_args(self, source: str, event_id: str, body: bytes) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the accept script, for callers that batch it into a pipeline."""
        now_ms = int(self.clock() * 1000)
        job_id = self.keys.job_id(source, event_id)
        keys = [self.keys.seen(source, event_id), self.keys.event(source, event_id), f"arq:job:{job_id}",
                self.keys.queue]
        args: list[Any] = [self.dedupe_seconds, body, self.event_ttl, job_bytes(source, event_id, now_ms),
                           self.job_ttl_ms, job_id, now_ms]
        return keys, args

    async def accept(self, source: str, event_id: str, body: bytes) -> bool:
        """Store and enqueue a new event; False (and nothing written) when it was accepted before."""
        keys, args = self.accept_args(source, event_id, body)
        return bool(await self._accept(keys=keys, args=args))


class BatchingIntake(Intake):
    """The same writes, but concurrent requests share one pipeline round trip per event-loop turn; each
    request is still answered only after Redis acknowledged its own script."""

    def __init__(self, redis: Redis, keys: Keys, delivery: DeliverySettings, clock: Clock = system_clock, *,
                 wait_replicas: WaitReplicas | None = None) -> None:
        super().__init__(redis, keys, delivery, clock)
        self.batcher = PipelineBatcher(redis, wait_replicas=wait_replicas)

    async def accept(self, source: str, event_id: str, body: bytes) -> bool:
        keys, args = self.accept_args(source, event_id, body)
        [stored] = await self.batcher.submit(lambda pipe: queue_script(pipe, self._accept, keys, args))
        return bool(stored)
