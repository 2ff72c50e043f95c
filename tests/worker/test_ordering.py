"""SPEC section 5 rule 8: the vendors end in the state of the latest event about each thing.

Every case checks the vendor emulators' END STATE (and that no stale call reached them), with real Redis,
real burst workers and the sandbox over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from arq import Retry

from core.clock import FrozenClock, rfc3339
from core.ordering import ordered, version_ms
from handlers.registry import Vendors, build_http_client
from store.dead_letters import Filter
from store.events import event_view
from store.keys import Keys
from tests.support.contacts import contact, event_of, expected_members, personaclick_members
from tests.support.worker import run_burst
from worker.app import build_deps
from worker.deliver import EventDelivery

T0 = 1_795_000_000.0
PERSON = 7
EMAIL = contact(PERSON)["email"]


def at(seconds: float) -> float:
    return T0 + seconds


def tags_of(sandbox: Any, email: str) -> list[str] | None:
    """The contact's tags at SegMetrics, None when SegMetrics has no such contact."""
    for integration in sandbox.state.snapshot()["segmetrics"].values():
        for person in integration["contacts"]:
            if person.get("email") == email:
                return list(person.get("tags") or [])
    return None


def members(sandbox: Any) -> set[str]:
    return personaclick_members(sandbox.state.snapshot())


async def calls(redis_client: Any, settings: Any, event_id: str) -> dict[str, dict[str, Any]]:
    found = await event_view(redis_client, Keys(settings.namespace), settings.route_table, "shopfront", event_id)
    assert found is not None
    return {f"{c['vendor']}.{c['operation']}": c for c in found["calls"]}


def sent(sandbox: Any, vendor: str, path: str) -> list[Any]:
    return [r for r in sandbox.state.requests if r.vendor == vendor and path in r.path]


async def test_a_leave_posted_right_after_a_slow_join_wins(events, vendor_settings, redis_client, sandbox) -> None:
    """The join is slow to apply at PersonaClick and SegMetrics; the leave must not overtake it."""
    sandbox.state.inject("personaclick", delay=0.3, times=1)
    sandbox.state.inject("segmetrics", delay=0.3, times=1)
    await events.accept(event_of("segment.join", at(0), "evt_join", PERSON))
    await events.accept(event_of("segment.leave", at(1), "evt_leave", PERSON))
    await run_burst(vendor_settings)
    assert EMAIL not in members(sandbox)
    assert "VIP customers" not in (tags_of(sandbox, EMAIL) or [])
    pc = [r.path.rsplit("/", 1)[-1] for r in sent(sandbox, "personaclick", "/segment")]
    assert pc in (["add", "remove"], ["remove"])  # the join first, or superseded: never after the leave


async def test_a_join_retried_after_a_503_does_not_land_after_the_leave(events, vendor_settings, redis_client,
                                                                       sandbox) -> None:
    sandbox.state.inject("personaclick", 503, times=1, path_contains="/add")
    await events.accept(event_of("segment.join", at(0), "evt_join", PERSON))
    await events.accept(event_of("segment.leave", at(1), "evt_leave", PERSON))
    await run_burst(vendor_settings)
    assert EMAIL not in members(sandbox)
    assert [r.status for r in sent(sandbox, "personaclick", "/add")] in ([503], [503, 200])
    join = await calls(redis_client, vendor_settings, "evt_join")
    if len(sent(sandbox, "personaclick", "/add")) == 1:
        assert join["personaclick.add_to_segment"]["status"] == "superseded"
        assert join["personaclick.add_to_segment"]["superseded_by"] == "evt_leave"


async def test_a_stale_join_arriving_after_the_leave_is_superseded(events, vendor_settings, redis_client,
                                                                   sandbox) -> None:
    """The platform retried the join later: it arrives after the leave, with an earlier occurred_at."""
    await events.accept(event_of("segment.leave", at(10), "evt_leave", PERSON))
    await run_burst(vendor_settings)
    await events.accept(event_of("segment.join", at(0), "evt_join", PERSON))
    await run_burst(vendor_settings)
    assert EMAIL not in members(sandbox)
    assert "VIP customers" not in (tags_of(sandbox, EMAIL) or [])
    assert sent(sandbox, "personaclick", "/add") == [] and sent(sandbox, "segmetrics", "tags/add") == []
    join = await calls(redis_client, vendor_settings, "evt_join")
    assert {name: c["status"] for name, c in join.items()} == {
        "segmetrics.add_tags": "superseded", "personaclick.add_to_segment": "superseded",
        "salesmachine.track_event": "succeeded",  # a fact: never superseded by another fact
    }
    assert join["segmetrics.add_tags"]["superseded_by"] == "evt_leave"


async def test_an_erasure_fences_a_signup_still_being_retried(vendor_settings, events, redis_client,
                                                              sandbox) -> None:
    """The signup's SegMetrics upsert failed once and waits for its retry when contact.delete arrives: the
    erased person must not be re-created."""
    sandbox.state.inject("segmetrics", 503, times=1, path_contains="/contact")
    deps = await build_deps(vendor_settings, redis=redis_client)
    signup = event_of("signup", at(0), "evt_signup", PERSON)
    signup["contact"]["tags"] = []  # its one SegMetrics call is the upsert
    await events.accept(signup)
    with pytest.raises(Retry):  # one run: the upsert failed and is due again
        await EventDelivery(deps, "shopfront", "evt_signup").run()
    await events.accept(event_of("contact.delete", at(5), "evt_erase", PERSON))
    await run_burst(vendor_settings)
    assert tags_of(sandbox, EMAIL) is None  # not at SegMetrics
    assert len(sent(sandbox, "segmetrics", "/contact")) == 2  # the failed upsert, then the delete
    signup = await calls(redis_client, vendor_settings, "evt_signup")
    assert signup["segmetrics.upsert_contact"]["status"] == "superseded"
    assert signup["segmetrics.upsert_contact"]["superseded_by"] == "evt_erase"
    # the erasure fences everything of the contact from before it, facts too; a later signup goes through
    await events.accept(event_of("signup", at(9), "evt_again", PERSON))
    await run_burst(vendor_settings)
    assert tags_of(sandbox, EMAIL) == ["newsletter"]
    await deps.http.aclose()


async def test_a_replayed_stale_join_is_superseded_unless_forced(events, vendor_settings, redis_client,
                                                                 sandbox) -> None:
    sandbox.state.inject("personaclick", 400, times=1, path_contains="/add")
    await events.accept(event_of("segment.join", at(0), "evt_join", PERSON))
    await run_burst(vendor_settings)
    await events.accept(event_of("segment.leave", at(1), "evt_leave", PERSON))
    await run_burst(vendor_settings)
    deps = await build_deps(vendor_settings, redis=redis_client, vendors=object())
    [letter], _ = await deps.dead_letters.page(Filter(vendor="personaclick"))
    assert await deps.dead_letters.replay(letter["id"])
    await run_burst(vendor_settings)
    assert EMAIL not in members(sandbox)
    join = await calls(redis_client, vendor_settings, "evt_join")
    assert join["personaclick.add_to_segment"]["status"] == "superseded"
    assert join["personaclick.add_to_segment"]["superseded_by"] == "evt_leave"
    assert len(sent(sandbox, "personaclick", "/add")) == 1  # only the refused first try

    # an operator who means it: the same letter, dead again, replayed with force
    sandbox.state.inject("personaclick", 400, times=1, path_contains="/add")
    await events.accept(event_of("segment.join", at(2), "evt_join2", PERSON))
    await run_burst(vendor_settings)
    await events.accept(event_of("segment.leave", at(3), "evt_leave2", PERSON))
    await run_burst(vendor_settings)
    [letter], _ = await deps.dead_letters.page(Filter(vendor="personaclick"))
    assert await deps.dead_letters.replay(letter["id"], force=True)
    await run_burst(vendor_settings)
    assert EMAIL in members(sandbox)


async def test_a_segment_deleted_while_its_create_is_retried_stays_deleted(events, vendor_settings, redis_client,
                                                                          sandbox) -> None:
    deps = await build_deps(vendor_settings, redis=redis_client)
    sandbox.state.inject("infinity", 503, times=1, method="POST")
    await events.accept(event_of("segment.upsert", at(0), "evt_upsert", None))
    with pytest.raises(Retry):
        await EventDelivery(deps, "shopfront", "evt_upsert").run()
    await events.accept(event_of("segment.delete", at(5), "evt_delete", None))
    assert await EventDelivery(deps, "shopfront", "evt_delete").run() == "done"  # then the retry comes
    await run_burst(vendor_settings)
    refs = [s.get("segmentRef") for s in sandbox.state.snapshot()["infinity"]["segments"]]
    assert "vip" not in refs
    upsert = await calls(redis_client, vendor_settings, "evt_upsert")
    assert upsert["infinity.upsert_segment"]["status"] == "superseded"
    await deps.http.aclose()


async def test_a_refund_is_not_undone_by_the_purchase_retried_after_it(events, vendor_settings, redis_client,
                                                                      sandbox) -> None:
    deps = await build_deps(vendor_settings, redis=redis_client)
    sandbox.state.inject("segmetrics", 503, times=1, path_contains="/invoice")
    purchase = event_of("purchase", at(0), "evt_purchase", PERSON)
    await events.accept(purchase)
    with pytest.raises(Retry):
        await EventDelivery(deps, "shopfront", "evt_purchase").run()
    await events.accept(event_of("refund", at(5), "evt_refund", PERSON))
    assert await EventDelivery(deps, "shopfront", "evt_refund").run() == "done"  # then the retry comes
    await run_burst(vendor_settings)
    [invoice] = [i for integ in sandbox.state.snapshot()["segmetrics"].values() for i in integ["invoices"]]
    assert str(invoice["is_refunded"]) == "1"
    assert (await calls(redis_client, vendor_settings, "evt_purchase"))["segmetrics.upsert_invoice"]["status"] \
        == "superseded"
    await deps.http.aclose()


def test_a_platform_clock_far_ahead_is_clamped_to_the_tolerance() -> None:
    event = {"occurred_at": "2100-01-01T00:00:00Z"}
    assert version_ms(event, T0, 300) == int((T0 + 300) * 1000)
    assert version_ms({"occurred_at": rfc3339(T0 - 5)}, T0, 300) == int((T0 - 5) * 1000)


async def test_a_join_from_the_far_future_does_not_freeze_the_contact(make_settings, sandbox, redis_client) -> None:
    from tests.worker.conftest import Events

    clock = FrozenClock(T0)
    settings = make_settings(vendors=sandbox.vendor_tables())
    events = Events(redis_client, settings)
    events.intake.clock = clock
    join = event_of("segment.join", T0, "evt_future", PERSON)
    join["occurred_at"] = "2100-01-01T00:00:00Z"
    await events.accept(join)
    await run_burst(settings)
    clock.advance(settings.ingress.tolerance_seconds + 1)  # the leave happens after the join's clamp
    await events.accept(event_of("segment.leave", clock(), "evt_leave", PERSON))
    await run_burst(settings)
    assert EMAIL not in members(sandbox)


class InFlight(httpx.AsyncBaseTransport):
    """The real transport, counting requests in flight per vendor (by the sandbox's URL prefix)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, most: dict[str, int]) -> None:
        self.inner = inner
        self.most = most
        self.now: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        vendor = request.url.path.split("/")[1]
        self.now[vendor] = self.now.get(vendor, 0) + 1
        self.most[vendor] = max(self.most.get(vendor, 0), self.now[vendor])
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.now[vendor] -= 1


async def test_fifty_alternating_joins_and_leaves_across_three_workers(make_settings, sandbox,
                                                                      redis_client) -> None:
    """One contact, 50 joins and leaves accepted back to back, three workers: never two requests of the
    contact in flight at one vendor, and the contact ends as the last event says."""
    from tests.worker.conftest import Events

    vendors = sandbox.vendor_tables()
    vendors["salesmachine"]["rate_per_second"] = 10_000  # its documented 3/s would be all this measures
    settings = make_settings(vendors=vendors)
    sandbox.state.inject("*", delay=0.005, times=10**6)
    kinds = ["segment.join", "segment.leave"]
    batch = [event_of(kinds[i % 2], at(i), f"evt_alt_{i}", PERSON) for i in range(51)]  # the last is a join
    events = Events(redis_client, settings)
    for event in batch:
        await events.accept(event)
    most: dict[str, int] = {}
    async with build_http_client(settings) as http:
        shared = InFlight(http, most)
        deps = [await build_deps(settings, redis=redis_client, vendors=Vendors(settings, shared)) for _ in range(3)]
        workers = await asyncio.gather(*(run_burst(settings, d, timeout=90, max_jobs=10) for d in deps))
    assert min(w.jobs_complete for w in workers) > 0  # all three took part
    assert most == {"segmetrics": 1, "salesmachine": 1, "personaclick": 1}
    assert members(sandbox) == expected_members(batch) == {EMAIL}
    assert "VIP customers" in (tags_of(sandbox, EMAIL) or [])


async def test_a_held_contact_does_not_hold_back_another(vendor_settings, events, redis_client, sandbox) -> None:
    """Person 1's calls are stuck (a call of theirs is in flight somewhere, holding them); person 2's events
    are delivered at once, and person 1's wait without using a try."""
    keys = Keys(vendor_settings.namespace)
    stuck = event_of("segment.join", at(0), "evt_stuck", 1)
    scope = ordered(stuck, "personaclick", "add_to_segment").scope
    assert scope is not None
    await redis_client.set(keys.hold("personaclick", "shopfront", scope), "someone/else", px=60_000)
    await events.accept(stuck)
    await events.accept(event_of("segment.join", at(1), "evt_free", 2))
    deps = await build_deps(vendor_settings, redis=redis_client)
    free = await EventDelivery(deps, "shopfront", "evt_free").run()
    assert free == "done"
    assert contact(2)["email"] in members(sandbox)
    deps_fast = await build_deps(vendor_settings.model_copy(update={"delivery": vendor_settings.delivery}),
                                 redis=redis_client)
    with pytest.raises(Retry):  # waits for the hold as long as its run can, then comes back soon
        await EventDelivery(deps_fast, "shopfront", "evt_stuck").run()
    stuck_calls = await calls(redis_client, vendor_settings, "evt_stuck")
    assert stuck_calls["personaclick.add_to_segment"]["status"] == "pending"
    assert stuck_calls["personaclick.add_to_segment"]["attempts"] == 0
    assert stuck_calls["segmetrics.add_tags"]["status"] == "succeeded"  # other vendors are not held
    await redis_client.delete(keys.hold("personaclick", "shopfront", scope))
    await run_burst(vendor_settings)
    assert contact(1)["email"] in members(sandbox)
    await deps.http.aclose()
    await deps_fast.http.aclose()


async def test_a_failing_contact_does_not_delay_another(make_settings, sandbox, redis_client) -> None:
    """Person 1's PersonaClick call fails and waits minutes for its retry; person 2 is delivered meanwhile."""
    from tests.worker.conftest import Events

    settings = make_settings(vendors=sandbox.vendor_tables(),
                             delivery={"timeout_seconds": 2, "schedule_seconds": [300, 600], "dedupe_seconds": 3600})
    events = Events(redis_client, settings)
    deps = await build_deps(settings, redis=redis_client)
    sandbox.state.inject("personaclick", 503, times=1)
    await events.accept(event_of("segment.join", at(0), "evt_failing", 1))
    with pytest.raises(Retry) as later:
        await EventDelivery(deps, "shopfront", "evt_failing").run()
    assert later.value.defer_score >= 300_000
    await events.accept(event_of("segment.join", at(1), "evt_other", 2))
    assert await EventDelivery(deps, "shopfront", "evt_other").run() == "done"
    assert members(sandbox) == {contact(2)["email"]}
    await deps.http.aclose()


async def test_ordering_off_sends_everything(make_settings, sandbox, redis_client) -> None:
    """`[delivery] ordering = false`: no gate, no supersede (the stale join reaches the vendors)."""
    from tests.worker.conftest import Events

    settings = make_settings(vendors=sandbox.vendor_tables(),
                             delivery={"timeout_seconds": 2, "schedule_seconds": [0.05], "dedupe_seconds": 3600,
                                       "ordering": False})
    events = Events(redis_client, settings)
    await events.accept(event_of("segment.leave", at(10), "evt_leave", PERSON))
    await run_burst(settings)
    await events.accept(event_of("segment.join", at(0), "evt_join", PERSON))
    await run_burst(settings)
    assert EMAIL in members(sandbox)
    assert await redis_client.keys(f"{settings.namespace}:hold:*") == []
