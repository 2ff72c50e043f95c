"""Per-vendor rate limits shared by every worker (SPEC section 5 rule 7): GCRA on Redis server time.

`reserve(vendor)` books the vendor's next free slot and returns how long until it comes (0 = go now). The
caller waits for a near slot, and defers the call to a far one (without using a try); the booking holds, so a
backlog is served in booking order instead of every deferred job asking again at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from store.batch import PipelineBatcher, queue_script
from store.keys import Keys

# KEYS[1] = theoretical arrival time (ms); ARGV[1] = interval ms. Books the next slot; returns its wait in ms.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat - now + interval + 1000))
return math.floor(tat - now)
"""


class RateLimiter:
    """Bookings go through a group-commit batcher (the worker's shared one): calls starting together share
    a round trip, and Redis still books them one after another."""

    def __init__(self, redis: Redis, keys: Keys, rates: Mapping[str, float | None], *, max_wait: float = 2.0,
                 batcher: PipelineBatcher | None = None) -> None:
        self.keys = keys
        self.intervals_ms = {v: 1000.0 / r for v, r in rates.items() if r}
        self.max_wait = max_wait
        self._script = redis.register_script(GCRA_LUA)
        self._batcher = batcher or PipelineBatcher(redis)

    async def reserve(self, vendor: str) -> float:
        """Book the vendor's next slot; seconds until it comes (0.0 for a vendor without a limit)."""
        interval = self.intervals_ms.get(vendor)
        if interval is None:
            return 0.0
        keys, args = [self.keys.rate(vendor)], [interval]
        [wait_ms] = await self._batcher.submit(lambda pipe: queue_script(pipe, self._script, keys, args))
        return int(wait_ms) / 1000
