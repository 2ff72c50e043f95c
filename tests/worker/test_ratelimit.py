"""The shared rate limiter, on real Redis time."""

import asyncio

from store.keys import Keys
from worker.ratelimit import RateLimiter


async def test_slots_are_spaced_and_far_slots_are_not_booked(redis_client, namespace) -> None:
    """At 10/s, 5 reservations at once book slots 0, 100, ... 400 ms away; past max_wait nothing is booked."""
    limiter = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 10.0}, max_wait=0.35)
    results = [await limiter.reserve("salesmachine") for _ in range(6)]
    booked = [wait for ok, wait in results if ok]
    assert len(booked) == 4
    for i, wait in enumerate(booked):
        assert abs(wait - i * 0.1) < 0.05
    ok, defer = results[-1]
    assert not ok and defer > 0.35


async def test_unlimited_vendor_goes_at_once(redis_client, namespace) -> None:
    limiter = RateLimiter(redis_client, Keys(namespace), {"segmetrics": None})
    assert await asyncio.gather(*(limiter.reserve("segmetrics") for _ in range(50))) == [(True, 0.0)] * 50


async def test_limit_is_shared_between_limiters(redis_client, namespace) -> None:
    """Two limiters (as in two workers) book from the same budget."""
    a = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 5.0}, max_wait=10)
    b = RateLimiter(redis_client, Keys(namespace), {"salesmachine": 5.0}, max_wait=10)
    waits = sorted([w for _, w in await asyncio.gather(*(x.reserve("salesmachine") for x in (a, b) * 5))])
    assert waits[-1] >= 1.7  # ten calls at 5/s span ~1.8 s wherever they were booked
