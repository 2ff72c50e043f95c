"""The shared rate limiter, on real Redis time."""

import asyncio
import time

from store.keys import Keys
from worker.ratelimit import RateLimiter


async def test_slots_are_booked_one_interval_apart(redis_client, namespace) -> None:
    """At 10/s, 6 reservations at once book slots 0, 100, ... 500 ms away."""
    limiter = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 10.0})
    slots = []
    for _ in range(6):
        asked = time.monotonic()
        slots.append(asked + await limiter.reserve("salesmachine"))  # when the booked slot comes
    for i, slot in enumerate(slots):
        assert abs((slot - slots[0]) - i * 0.1) < 0.05


async def test_unlimited_vendor_goes_at_once(redis_client, namespace) -> None:
    limiter = RateLimiter(redis_client, Keys(namespace), {"segmetrics": None})
    assert await asyncio.gather(*(limiter.reserve("segmetrics") for _ in range(50))) == [0.0] * 50


async def test_limit_is_shared_between_limiters(redis_client, namespace) -> None:
    """Two limiters (as in two workers) book from the same budget."""
    a = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 5.0})
    b = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 5.0})
    waits = sorted(await asyncio.gather(*(x.reserve("salesmachine") for x in (a, b) * 5)))
    assert waits[-1] >= 1.7  # ten calls at 5/s span ~1.8 s wherever they were booked
