"""Rule 7: a vendor's rate limit holds across several workers together."""

from __future__ import annotations

import asyncio
import time

from cli.samples import sample_event
from handlers.registry import Vendors, build_http_client
from tests.support.contacts import event_of
from tests.support.worker import run_burst
from tests.worker.conftest import Events
from worker.app import build_deps

RATE = 20.0


class Timed:
    """The real vendor clients, noting when each call starts."""

    def __init__(self, vendors: Vendors, starts: list[float]) -> None:
        self.vendors = vendors
        self.starts = starts

    def is_configured(self, vendor: str, operation: str) -> bool:
        return self.vendors.is_configured(vendor, operation)

    async def perform(self, vendor, operation, event, *, idempotency_key, timeout) -> None:
        self.starts.append(time.monotonic())
        await self.vendors.perform(vendor, operation, event, idempotency_key=idempotency_key, timeout=timeout)


async def test_three_workers_share_one_budget(make_settings, sandbox, redis_client) -> None:
    tables = sandbox.vendor_tables()
    tables["salesmachine"]["rate_per_second"] = RATE
    settings = make_settings(vendors={"salesmachine": tables["salesmachine"]},
                             routes={"signup": ["salesmachine.track_event"]},
                             worker={"rate_max_wait_seconds": 0.5})
    events = Events(redis_client, settings)
    for i in range(40):
        await events.accept(sample_event("signup", 1_795_000_000.0, f"evt_{i}"))
    starts: list[float] = []
    async with build_http_client(settings) as http:
        deps = [await build_deps(settings, redis=redis_client, vendors=Timed(Vendors(settings, http), starts))
                for _ in range(3)]
        # few jobs at a time each, so no worker can take the whole queue in its first poll
        workers = await asyncio.gather(*(run_burst(settings, d, timeout=60, max_jobs=4) for d in deps))
    assert sum(w.jobs_complete for w in workers) == 40
    assert min(w.jobs_complete for w in workers) > 0  # all three took part
    assert len(starts) == 40 and len(sandbox.state.requests) == 40
    starts.sort()
    # in any one-second window, at most RATE calls (+1 for the window's edge) started
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= RATE + 1
    assert starts[-1] - starts[0] >= (40 - 1) / RATE * 0.9


async def test_a_paused_worker_does_not_burst_when_it_wakes(make_settings, sandbox, redis_client) -> None:
    """The only worker stops for 3 s (a deploy, a long GC, a saturated CPU: here its event loop is blocked)
    while a dozen calls wait for their slots: on waking, calls whose slot passed book again instead of
    going out together. Any n consecutive calls spanning s seconds: n <= rate x (s + 0.2) + rate + 1."""
    rate = 4.0
    tables = sandbox.vendor_tables()
    tables["salesmachine"]["rate_per_second"] = rate
    settings = make_settings(vendors={"salesmachine": tables["salesmachine"]},
                             routes={"signup": ["salesmachine.track_event"]}, worker={"rate_max_wait_seconds": 5})
    events = Events(redis_client, settings)
    for i in range(12):  # twelve people: their calls are not ordered behind one another (rule 8)
        await events.accept(event_of("signup", 1_795_000_000.0, f"evt_p{i}", i))
    starts: list[float] = []
    loop = asyncio.get_running_loop()
    loop.call_later(0.6, time.sleep, 3.0)  # the pause itself: nothing in this process runs meanwhile
    async with build_http_client(settings) as http:
        deps = await build_deps(settings, redis=redis_client, vendors=Timed(Vendors(settings, http), starts))
        await run_burst(settings, deps, timeout=60)
    assert len(starts) == 12
    starts.sort()
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            n, span = j - i + 1, starts[j] - starts[i]
            assert n <= rate * (span + 0.2) + rate + 1, (n, span)
