"""Rule 7: a vendor's rate limit holds across several workers together."""

from __future__ import annotations

import asyncio
import time

from cli.samples import sample_event
from handlers.registry import Vendors, build_http_client
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
