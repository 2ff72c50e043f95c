"""Per-vendor rate limits shared by every worker (SPEC section 5 rule 7): GCRA on Redis server time.

`reserve(vendor)` books the vendor's next free slot and returns how long to wait for it (0 = go now). A slot
further away than `max_wait` is not booked: the caller defers the call instead, without using a try.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from store.keys import Keys

# KEYS[1] = theoretical arrival time (ms); ARGV: interval ms, max wait ms. Returns wait ms (negative = not booked).
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return -wait end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(wait + interval + 1000))
return wait
"""


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, rates: Mapping[str, float | None], *, max_wait: float = 2.0) -> None:
        self.keys = keys
        self.intervals_ms = {v: 1000.0 / r for v, r in rates.items() if r}
        self.max_wait_ms = int(max_wait * 1000)
        self._script = redis.register_script(GCRA_LUA)

    async def reserve(self, vendor: str) -> tuple[bool, float]:
        """(booked, seconds): booked = go after waiting `seconds`; not booked = defer by `seconds`."""
        interval = self.intervals_ms.get(vendor)
        if interval is None:
            return True, 0.0
        wait_ms = int(await self._script(keys=[self.keys.rate(vendor)], args=[interval, self.max_wait_ms]))
        return (wait_ms >= 0), abs(wait_ms) / 1000
