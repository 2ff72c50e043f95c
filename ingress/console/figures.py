"""The overview's figures: what Redis holds now, plus two things no store keeps.

- **Last event accepted per source**: written by the intake script itself (`Keys.last_accepted`), so it is the
  whole fleet's.
- **Vendor calls by outcome over the last hour**: workers keep only cumulative counters (store.metrics); this
  process reads them once a minute (`CallHistory.sample`, one HGETALL) and keeps 61 readings in memory, so the
  differences give calls per minute and the count since the oldest reading within the hour.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.clock import Clock
from store.keys import Keys
from store.metrics import FleetMetrics

MINUTE = 60.0
HOUR = 3600.0
OUTCOMES: tuple[str, ...] = ("succeeded", "retrying", "rate_limited", "skipped", "superseded", "dead")
"""The outcomes workers count (store.metrics), in the order the console lists and stacks them."""

Totals = dict[str, int]


@dataclass(frozen=True, slots=True)
class Accepted:
    source: str
    event_id: str
    event_type: str | None
    at: float


def last_accepted(raw: Mapping[bytes, bytes]) -> dict[str, Accepted]:
    """The intake script's `source -> <ms>|<event id>|<type>` hash, read (an unreadable entry is skipped)."""
    found = {}
    for field, value in raw.items():
        ms, _, rest = value.decode(errors="replace").partition("|")
        event_id, _, event_type = rest.partition("|")
        if ms.isdigit() and event_id:
            source = field.decode(errors="replace")
            found[source] = Accepted(source, event_id, event_type or None, int(ms) / 1000)
    return found


def outcome_totals(fleet: FleetMetrics) -> Totals:
    """Calls by outcome, summed over vendors and operations."""
    totals: Totals = {}
    for (_, _, outcome), count in fleet.calls.items():
        totals[outcome] = totals.get(outcome, 0) + count
    return totals


def difference(later: Mapping[str, int], earlier: Mapping[str, int]) -> Totals:
    """Per-outcome increase; a counter that went down (the hash was reset) counts from zero."""
    out: Totals = {}
    for outcome, count in later.items():
        before = earlier.get(outcome, 0)
        out[outcome] = count - before if count >= before else count
    return out


class CallHistory:
    """Readings of the fleet's cumulative call counters by outcome, oldest first, one a minute for an hour."""

    def __init__(self, keep: int = 61) -> None:
        self.readings: deque[tuple[float, Totals]] = deque(maxlen=keep)

    def add(self, at: float, totals: Totals) -> None:
        self.readings.append((at, dict(totals)))

    async def sample(self, redis: Redis, keys: Keys, at: float) -> None:
        self.add(at, outcome_totals(FleetMetrics.parse(await redis.hgetall(keys.metrics))))

    def per_minute(self, now: float, current: Totals) -> list[tuple[float, Totals]]:
        """(start, calls by outcome) for each interval between readings within the last hour, the last one
        ending now with `current`."""
        points = [(at, totals) for at, totals in self.readings if at >= now - HOUR]
        points.append((now, current))
        return [(a[0], difference(b[1], a[1])) for a, b in zip(points, points[1:], strict=False) if b[0] > a[0]]

    def last_hour(self, now: float, current: Totals) -> tuple[float | None, Totals]:
        """(since when, calls by outcome since then): from the oldest reading within the hour to `current`;
        (None, {}) before the first reading."""
        within = [(at, totals) for at, totals in self.readings if now - HOUR <= at <= now]
        if not within:
            return None, {}
        since, base = within[0]
        return since, difference(current, base)


@contextlib.asynccontextmanager
async def sampling(history: CallHistory, redis: Redis, keys: Keys, clock: Clock,
                   interval: float = MINUTE) -> AsyncIterator[None]:
    """Reads the counters now and then at every whole `interval`, in the background, until exited."""

    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(RedisError, OSError):  # a missed reading only widens one interval
                await history.sample(redis, keys, clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval - clock() % interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        # the event as well as the cancel: redis-py can swallow a cancel that lands while it connects
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True, slots=True)
class Fleet:
    dead_letters: dict[str, int]
    queue_depth: int
    queue_due: int
    calls: Totals
    accepted: dict[str, Accepted]


async def read_fleet(redis: Redis, keys: Keys, now: float) -> Fleet:
    """Dead letters per vendor, queue depth (and how many of those jobs are due now), calls by outcome."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.dead_counts)
        pipe.zcard(keys.queue)
        pipe.zcount(keys.queue, "-inf", int(now * 1000))
        pipe.hgetall(keys.metrics)
        pipe.hgetall(keys.last_accepted)
        raw_dead, depth, due, raw_metrics, raw_accepted = await pipe.execute()
    dead = {k.decode(): int(v) for k, v in raw_dead.items() if int(v) > 0}
    return Fleet(dict(sorted(dead.items())), int(depth), int(due), outcome_totals(FleetMetrics.parse(raw_metrics)),
                 last_accepted(raw_accepted))
