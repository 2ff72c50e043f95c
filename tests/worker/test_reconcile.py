"""The reconciler: an event that still owes calls always gets a job back, whatever happened to arq's."""

from __future__ import annotations

from cli.samples import sample_event
from core.clock import FrozenClock
from tests.support.worker import run_burst
from worker.app import build_deps
from worker.reconcile import reconcile

T0 = 1_795_000_000.0


async def test_an_event_whose_job_vanished_is_delivered_after_all(events, vendor_settings, redis_client, sandbox):
    clock = FrozenClock(T0)
    events.intake.clock = clock
    await events.accept(sample_event("segment.join", T0, "evt_lost"))
    job_id = events.keys.job_id("shopfront", "evt_lost")
    await redis_client.delete(f"arq:job:{job_id}")  # as arq leaves a job it timed out, or a key that expired
    await redis_client.zrem(events.keys.queue, job_id)
    await run_burst(vendor_settings)
    assert sandbox.state.requests == []  # nothing knows of the event any more but the owed set

    deps = await build_deps(vendor_settings, redis=redis_client, clock=clock)
    assert await reconcile(deps, grace=60) == 0  # too recent to be judged lost
    clock.advance(61)
    assert await reconcile(deps, grace=60) == 1
    await run_burst(vendor_settings)
    assert {r.vendor for r in sandbox.state.requests} == {"segmetrics", "salesmachine", "personaclick"}
    assert await redis_client.zcard(events.keys.owed) == 0  # all final: no longer owed
    await deps.http.aclose()


async def test_events_with_a_job_or_without_a_body_are_left_alone(events, vendor_settings, redis_client, sandbox):
    events.intake.clock = FrozenClock(T0)
    await events.accept(sample_event("signup", T0, "evt_queued"))
    await events.accept(sample_event("signup", T0, "evt_expired"))
    await redis_client.delete(events.keys.event("shopfront", "evt_expired"))
    clock = FrozenClock(T0 + 10**6)
    deps = await build_deps(vendor_settings, redis=redis_client, clock=clock)
    assert await reconcile(deps, grace=60) == 0
    assert await redis_client.zrange(events.keys.owed, 0, -1) == [b"shopfront/evt_queued"]
    assert await redis_client.zcard(events.keys.queue) == 2  # nothing added
    await deps.http.aclose()
