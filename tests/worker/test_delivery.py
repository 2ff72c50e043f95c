"""Delivery end to end: real Redis, a real arq worker in burst mode, the vendor sandbox over real HTTP."""

from __future__ import annotations

import time

import pytest
from arq import Retry

from cli.samples import sample_event
from core.clock import FrozenClock
from core.idempotency import idempotency_key
from core.routing import EVENT_TYPES
from store.dead_letters import Filter
from store.events import event_view
from store.intake import job_bytes
from tests.support.worker import run_burst
from worker.app import build_deps
from worker.deliver import EventDelivery

T0 = 1_795_000_000.0


async def view(redis_client, settings, event_id: str, source: str = "shopfront") -> dict:
    from store.keys import Keys

    found = await event_view(redis_client, Keys(settings.namespace), settings.route_table, source, event_id)
    assert found is not None
    return found


def statuses(found: dict) -> dict[str, str]:
    return {f"{c['vendor']}.{c['operation']}": c["status"] for c in found["calls"]}


def calls_to(sandbox, path: str) -> list:
    return [r for r in sandbox.state.requests if path in r.path]


async def test_signup_reaches_every_vendor_with_idempotency_keys(events, vendor_settings, redis_client, sandbox):
    event = sample_event("signup", T0, "evt_signup")
    await events.accept(event)
    await run_burst(vendor_settings)
    found = await view(redis_client, vendor_settings, "evt_signup")
    assert statuses(found) == {
        "segmetrics.upsert_contact": "succeeded", "segmetrics.add_tags": "succeeded",
        "salesmachine.upsert_account": "succeeded", "salesmachine.upsert_contact": "succeeded",
        "salesmachine.track_event": "succeeded",
    }
    sent = sandbox.state.requests
    assert len(sent) == 5 and all(r.status == 200 for r in sent)
    expected_keys = {idempotency_key("shopfront", "evt_signup", c["vendor"], c["operation"]) for c in found["calls"]}
    assert {r.idempotency_key for r in sent} == expected_keys
    assert all(r.headers["user-agent"].startswith("sluice/") for r in sent)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
async def test_every_event_type_is_delivered(event_type, events, vendor_settings, redis_client):
    await events.accept(sample_event(event_type, T0, "evt_1"))
    await run_burst(vendor_settings)
    found = await view(redis_client, vendor_settings, "evt_1")
    assert found["calls"] and set(statuses(found).values()) == {"succeeded"}


async def test_unconfigured_vendor_is_skipped(make_settings, sandbox, redis_client):
    settings = make_settings(vendors={"segmetrics": sandbox.vendor_tables()["segmetrics"]})
    from tests.worker.conftest import Events

    await Events(redis_client, settings).accept(sample_event("purchase", T0, "evt_p"))
    await run_burst(settings)
    assert statuses(await view(redis_client, settings, "evt_p")) == {
        "segmetrics.upsert_invoice": "succeeded", "segmetrics.upsert_subscription": "succeeded",
        "salesmachine.track_event": "skipped",
    }
    assert {r.vendor for r in sandbox.state.requests} == {"segmetrics"}


async def test_transient_failures_retry_only_the_failed_call(events, vendor_settings, redis_client, sandbox):
    sandbox.state.inject("salesmachine", 503, times=2, path_contains="/track/event")
    await events.accept(sample_event("signup", T0, "evt_t"))
    await run_burst(vendor_settings)
    found = await view(redis_client, vendor_settings, "evt_t")
    assert set(statuses(found).values()) == {"succeeded"}
    track = next(c for c in found["calls"] if c["operation"] == "track_event")
    assert track["attempts"] == 3 and track["last_error"]["status"] == 503
    assert [r.status for r in calls_to(sandbox, "/track/event")] == [503, 503, 200]
    assert len({r.idempotency_key for r in calls_to(sandbox, "/track/event")}) == 1
    others = [r for r in sandbox.state.requests if "/track/event" not in r.path]
    assert len(others) == 4 and len({r.idempotency_key for r in others}) == 4  # each sent once


async def test_permanent_error_dead_letters_at_once(events, vendor_settings, redis_client, sandbox):
    sandbox.state.inject("segmetrics", 400, times=1, path_contains="/invoice", body='{"status":"error","errors":["missing \'id\' field"]}')
    await events.accept(sample_event("purchase", T0, "evt_dead"))
    await run_burst(vendor_settings)
    found = await view(redis_client, vendor_settings, "evt_dead")
    assert statuses(found)["segmetrics.upsert_invoice"] == "dead"
    assert statuses(found)["salesmachine.track_event"] == "succeeded"
    deps = await build_deps(vendor_settings, redis=redis_client, vendors=object())
    letters, _ = await deps.dead_letters.page(Filter())
    assert len(letters) == 1
    letter = letters[0]
    assert letter["error"]["class"] == "permanent" and letter["error"]["status"] == 400
    assert "missing" in letter["error"]["body"] and letter["attempts"] == 1
    assert letter["idempotency_key"] == idempotency_key("shopfront", "evt_dead", "segmetrics", "upsert_invoice")
    assert letter["event"]["id"] == "evt_dead" and letter["event_type"] == "purchase"
    assert len(calls_to(sandbox, "/invoice")) == 1


async def test_used_up_schedule_dead_letters_then_replay_delivers(events, vendor_settings, redis_client, sandbox):
    """4 tries (3 waits) then a dead letter; a replay sends only that call, with the same key, and succeeds."""
    sandbox.state.inject("personaclick", 503, times=4)
    await events.accept(sample_event("segment.join", T0, "evt_x"))
    await run_burst(vendor_settings)
    deps = await build_deps(vendor_settings, redis=redis_client, vendors=object())
    [letter], _ = await deps.dead_letters.page(Filter(vendor="personaclick"))
    assert letter["attempts"] == 4 and letter["error"]["class"] == "transient"
    assert letter["first_failed_at"] < letter["last_failed_at"]
    before = len(sandbox.state.requests)

    assert await deps.dead_letters.replay(letter["id"])
    await run_burst(vendor_settings)
    new = sandbox.state.requests[before:]
    assert [(r.vendor, r.status) for r in new] == [("personaclick", 200)]
    assert new[0].idempotency_key == letter["idempotency_key"]
    found = await view(redis_client, vendor_settings, "evt_x")
    assert set(statuses(found).values()) == {"succeeded"}
    assert (await deps.dead_letters.page(Filter()))[0] == []


async def test_a_second_run_of_a_delivered_event_sends_nothing(events, vendor_settings, redis_client, sandbox):
    """Duplicate job (e.g. a crash after the ledger write): succeeded calls are never sent again."""
    event = sample_event("refund", T0, "evt_r")
    await events.accept(event)
    await run_burst(vendor_settings)
    sent = len(sandbox.state.requests)
    job_id = events.keys.job_id("shopfront", "evt_r", "again")  # a second job for the same event
    now_ms = int(time.time() * 1000)  # arq skips a job scored 0; the score is not asserted on
    await redis_client.set(f"arq:job:{job_id}", job_bytes("shopfront", "evt_r", now_ms), ex=60)
    await redis_client.zadd(events.keys.queue, {job_id: now_ms})
    await run_burst(vendor_settings)
    assert len(sandbox.state.requests) == sent


async def test_timeout_is_transient(make_settings, sandbox, redis_client):
    settings = make_settings(vendors=sandbox.vendor_tables(),
                             delivery={"timeout_seconds": 1, "schedule_seconds": [0.05, 0.1, 0.2]})
    from tests.worker.conftest import Events

    sandbox.state.inject("infinity", delay=5, times=1)
    await Events(redis_client, settings).accept(sample_event("segment.delete", T0, "evt_slow"))
    await run_burst(settings)
    found = await view(redis_client, settings, "evt_slow")
    [call] = found["calls"]
    assert call["status"] == "succeeded" and call["attempts"] == 2


async def test_routes_override_replaces_a_row(make_settings, sandbox, redis_client):
    settings = make_settings(vendors=sandbox.vendor_tables(), routes={"purchase": ["segmetrics.upsert_invoice"]})
    from tests.worker.conftest import Events

    await Events(redis_client, settings).accept(sample_event("purchase", T0, "evt_o"))
    await run_burst(settings)
    assert statuses(await view(redis_client, settings, "evt_o")) == {"segmetrics.upsert_invoice": "succeeded"}
    assert len(sandbox.state.requests) == 1


async def test_unmapped_personaclick_segment_is_a_permanent_config_error(events, vendor_settings, redis_client):
    event = sample_event("segment.join", T0, "evt_seg")
    event["data"]["segment"] = {"id": "nobody-mapped-this", "name": "Ghosts"}
    await events.accept(event)
    await run_burst(vendor_settings)
    found = await view(redis_client, vendor_settings, "evt_seg")
    assert statuses(found)["personaclick.add_to_segment"] == "dead"
    assert statuses(found)["segmetrics.add_tags"] == "succeeded"


class _Frozen:
    """Direct runs of EventDelivery with a frozen clock, to read the retry decision arq is given."""

    @staticmethod
    async def deps(settings, redis_client, clock):
        import random

        return await build_deps(settings, redis=redis_client, clock=clock, rng=random.Random(1))


async def test_retry_after_sets_the_next_run(make_settings, sandbox, redis_client):
    settings = make_settings(vendors=sandbox.vendor_tables(),
                             delivery={"schedule_seconds": [0.05, 0.1, 5], "timeout_seconds": 2})
    from tests.worker.conftest import Events

    clock = FrozenClock(T0)
    deps = await _Frozen.deps(settings, redis_client, clock)
    sandbox.state.inject("infinity", 429, times=1, retry_after=3)
    await Events(redis_client, settings).accept(sample_event("segment.delete", T0, "evt_ra"))
    with pytest.raises(Retry) as raised:
        await EventDelivery(deps, "shopfront", "evt_ra").run()
    assert raised.value.defer_score == 3000  # Retry-After 3 s beats the 0.05 s step
    await deps.http.aclose()


async def test_a_held_lease_defers_the_run(vendor_settings, events, redis_client, sandbox):
    """While another worker delivers the event, this run sends nothing and comes back later."""
    deps = await build_deps(vendor_settings, redis=redis_client)
    await events.accept(sample_event("signup", T0, "evt_l"))
    await redis_client.set(deps.keys.lease("shopfront", "evt_l"), "someone-else", px=5000)
    with pytest.raises(Retry) as raised:
        await EventDelivery(deps, "shopfront", "evt_l").run()
    assert 0 < raised.value.defer_score <= 5000
    assert sandbox.state.requests == []
    await deps.http.aclose()


async def test_a_crashing_handler_is_dead_lettered_not_retried_forever(vendor_settings, events, redis_client):
    class Broken:
        def is_configured(self, vendor, operation):
            return True

        async def perform(self, vendor, operation, event, *, idempotency_key, timeout):
            raise RuntimeError("boom")

    deps = await build_deps(vendor_settings, redis=redis_client, vendors=Broken())
    await events.accept(sample_event("ad.performance", T0, "evt_b"))
    await run_burst(vendor_settings, deps)
    [letter], _ = await deps.dead_letters.page(Filter())
    assert letter["error"]["class"] == "permanent" and "internal error" in letter["error"]["message"]


async def test_a_failed_record_beside_a_slow_sibling_never_sends_the_sibling_twice(vendor_settings, events,
                                                                                  redis_client, sandbox):
    """One call's bookkeeping fails (Redis) while a sibling call of the run is still in flight: the run waits
    for the sibling before it ends and releases the lease, so the retry of the run cannot send it again."""
    import dataclasses

    from redis.exceptions import ConnectionError as RedisConnectionError

    from store.batch import PipelineBatcher

    class FailsOneRecord(PipelineBatcher):
        failed = False

        async def submit(self, queue, counters=None):
            probe = self.redis.pipeline(transaction=False)
            queue(probe)
            if not self.failed and any(b"segmetrics.upsert_contact" in repr(args).encode()
                                       for args, _ in probe.command_stack):
                FailsOneRecord.failed = True
                raise RedisConnectionError("Redis went away for this one write")
            return await super().submit(queue, counters)

    deps = await build_deps(vendor_settings, redis=redis_client)
    deps = dataclasses.replace(deps, batcher=FailsOneRecord(redis_client))
    sandbox.state.inject("salesmachine", delay=1.5, times=1)  # slower than the retry of the run (1 s)
    await events.accept(sample_event("signup", T0, "evt_sib"))
    await run_burst(vendor_settings, deps)
    assert FailsOneRecord.failed
    found = await view(redis_client, vendor_settings, "evt_sib")
    assert set(statuses(found).values()) == {"succeeded"}
    keys = [r.idempotency_key for r in sandbox.state.requests if r.vendor == "salesmachine"]
    assert len(keys) == 3 and len(set(keys)) == 3  # each sibling sent once, never again by the retry
    upserts = [r for r in sandbox.state.requests if r.vendor == "segmetrics" and "/contact" in r.path]
    assert len(upserts) == 2  # the one whose outcome was lost goes again, with its key (README's window)
    await deps.http.aclose()
