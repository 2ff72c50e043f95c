"""Putting events where a worker will find them: one atomic Lua script per accepted event.

The script sets the dedupe marker (NX), stores the event body, and enqueues an arq job in arq's own format
(job key + queue entry), so stock arq workers consume it. In the same step it gives the event its version
for SPEC rule 8 (occurred_at clamped, and the next acceptance number: `_v` in the ledger), lists it among the
events that owe calls (`Keys.owed`, for the reconciler), notes it as its source's last accepted event (the
console's overview), and for a `contact.delete` raises the contact's fence. A duplicate (source, id) writes nothing.
Jobs are JSON (orjson), never pickle: `{"t": try, "f": function, "a": [source, event_id], "k": {}, "et": ms}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

from config.settings import DeliverySettings
from core.clock import Clock, system_clock
from core.ordering import FENCING_TYPE, scope_of, version_ms
from store.batch import PipelineBatcher, WaitReplicas, queue_packed
from store.keys import Keys
from store.order import LATER_LUA
from store.resp import PackedCommand, Template

DELIVER = "deliver"
"""The arq function name of the per-event delivery job."""

_DAY = 86_400

ACCEPT_LUA = LATER_LUA + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('PSETEX', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
local version = ARGV[8] .. ':' .. redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[6], '_v', version)
redis.call('EXPIRE', KEYS[6], ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[7], ARGV[10])
redis.call('HSET', KEYS[8], ARGV[11], ARGV[7] .. '|' .. ARGV[9] .. '|' .. ARGV[12])
if KEYS[9] then
  local fence = version .. ':' .. ARGV[9]
  if later(fence, redis.call('HGET', KEYS[9], 'fence')) then redis.call('HSET', KEYS[9], 'fence', fence) end
  if redis.call('HEXISTS', KEYS[9], '_dl') == 0 then redis.call('EXPIRE', KEYS[9], ARGV[3]) end
end
return 1
"""
"""KEYS: dedupe marker, event body, arq job, queue, acceptance counter, ledger, owed set, last accepted per
source, and for a contact.delete the contact's order hash. ARGV: dedupe s, body, event TTL s, job, job TTL ms,
job id, now ms, version ms, event id, owed member, source, event type."""


def owed_member(source: str, event_id: str) -> str:
    """An event in `Keys.owed` (neither part can hold a `/`); also the token of its calls' holds."""
    return f"{source}/{event_id}"


def job_bytes(source: str, event_id: str, enqueue_ms: int) -> bytes:
    return orjson.dumps({"t": None, "f": DELIVER, "a": [source, event_id], "k": {}, "et": enqueue_ms})


def delivery_horizon_seconds(delivery: DeliverySettings) -> int:
    """Longest time an event's delivery can take: every wait at its longest (the step at its most jittered, or
    the longest Retry-After honoured), every try at its longest, plus a day of slack. arq's job key and our
    event key must live at least this long (every run renews the job key; the reconciler is the safety net)."""
    waits = sum(max(step * (1 + delivery.jitter), delivery.max_retry_after_seconds)
                for step in delivery.schedule_seconds)
    tries = delivery.max_tries * (delivery.timeout_seconds * 4 + 30)
    return int(waits + tries) + _DAY


class Intake:
    def __init__(self, redis: Redis, keys: Keys, delivery: DeliverySettings, clock: Clock = system_clock, *,
                 tolerance_seconds: float = 300) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.tolerance_seconds = tolerance_seconds
        self.dedupe_seconds = delivery.dedupe_seconds
        horizon = delivery_horizon_seconds(delivery)
        self.event_ttl = max(self.dedupe_seconds, horizon) + _DAY
        self.job_ttl_ms = horizon * 1000
        self._accept = redis.register_script(ACCEPT_LUA)

    def accept_args(self, source: str, event: Mapping[str, Any], body: bytes) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the accept script, for callers that batch it into a pipeline. `event` is the
        validated event, `body` the verified bytes it was read from (what is stored)."""
        event_id: str = event["id"]
        now = self.clock()
        now_ms = int(now * 1000)
        job_id = self.keys.job_id(source, event_id)
        keys = [self.keys.seen(source, event_id), self.keys.event(source, event_id), f"arq:job:{job_id}",
                self.keys.queue, self.keys.sequence, self.keys.calls(source, event_id), self.keys.owed,
                self.keys.last_accepted]
        args: list[Any] = [self.dedupe_seconds, body, self.event_ttl, job_bytes(source, event_id, now_ms),
                           self.job_ttl_ms, job_id, now_ms, version_ms(event, now, self.tolerance_seconds),
                           event_id, owed_member(source, event_id), source, str(event.get("type", ""))]
        scope = scope_of(event)
        if event.get("type") == FENCING_TYPE and scope is not None:
            keys.append(self.keys.order(source, scope))
        return keys, args

    async def accept(self, source: str, event: Mapping[str, Any], body: bytes) -> bool:
        """Store and enqueue a new event; False (and nothing written) when it was accepted before."""
        keys, args = self.accept_args(source, event, body)
        return bool(await self._accept(keys=keys, args=args))


class BatchingIntake(Intake):
    """The same writes, but concurrent requests share one pipeline round trip per event-loop turn; each
    request is still answered only after Redis acknowledged its own script."""

    def __init__(self, redis: Redis, keys: Keys, delivery: DeliverySettings, clock: Clock = system_clock, *,
                 tolerance_seconds: float = 300, wait_replicas: WaitReplicas | None = None) -> None:
        super().__init__(redis, keys, delivery, clock, tolerance_seconds=tolerance_seconds)
        self.batcher = PipelineBatcher(redis, wait_replicas=wait_replicas)
        self._templates: dict[int, Template] = {}
        """The accept script's command by number of keys (with or without the fence), its constant places (the
        script, the shared keys, the TTLs) packed once: `accept_command`."""

    def accept_command(self, source: str, event: Mapping[str, Any], body: bytes) -> PackedCommand:
        """The accept script's EVALSHA, packed: the same bytes as redis-py's packing of `accept_args`."""
        keys, args = self.accept_args(source, event, body)
        command = ["EVALSHA", self._accept.sha, len(keys), *keys, *args]
        template = self._templates.get(len(keys))
        if template is None:
            key, arg = 3, 3 + len(keys)  # where KEYS and ARGV start in the command (see ACCEPT_LUA's list)
            constant = {0, 1, 2,  # EVALSHA, the script's SHA, the number of keys
                        key + 3, key + 4, key + 6, key + 7,  # queue, acceptance counter, owed set, last accepted
                        arg, arg + 2, arg + 4}  # dedupe s, event TTL s, job TTL ms
            encoder = self.redis.connection_pool.get_encoder()
            template = self._templates[len(keys)] = Template(command, constant, encoder)
        return template.pack(command)

    async def accept(self, source: str, event: Mapping[str, Any], body: bytes) -> bool:
        command = self.accept_command(source, event, body)
        [stored] = await self.batcher.submit(lambda pipe: queue_packed(pipe, self._accept, command))
        return bool(stored)
