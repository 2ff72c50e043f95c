"""The dead-letter store against a real Redis: atomic write, filters, paging, replay, delete."""

from __future__ import annotations

import orjson
import pytest

from core.clock import FrozenClock, rfc3339
from core.idempotency import idempotency_key
from store.calls import CallState, Status
from store.dead_letters import DeadLetterStore, Filter, dead_letter_record, new_id, parse_cursor
from store.intake import Intake
from store.keys import Keys

T0 = 1_795_000_000.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def store(redis_client, settings, clock) -> DeadLetterStore:
    keys = Keys(settings.namespace)
    return DeadLetterStore(redis_client, keys, Intake(redis_client, keys, settings.delivery, clock), clock)


def event(n: int, type_: str = "signup") -> dict:
    return {"id": f"evt_{n}", "type": type_, "occurred_at": "2026-11-24T10:00:00Z",
            "contact": {"id": "c1", "email": "a@example.com"}, "data": {}}


async def put(store: DeadLetterStore, n: int, *, at: float, vendor: str = "segmetrics", type_: str = "signup",
              source: str = "shopfront") -> dict:
    state = CallState().failed({"class": "permanent", "status": 400, "message": "bad", "body": "{}"}, at,
                               next_at=None)
    letter = dead_letter_record(dl_id=new_id(at), source=source, event=event(n, type_), vendor=vendor,
                                operation="upsert_contact",
                                idempotency_key=idempotency_key(source, f"evt_{n}", vendor, "upsert_contact"),
                                state=state)
    await store.put(letter, state)
    return letter


async def test_put_marks_the_call_dead_and_stores_the_letter(store, redis_client, settings) -> None:
    """The dead letter and the ledger's `dead` mark are written together."""
    letter = await put(store, 1, at=T0)
    assert await store.get(letter["id"]) == letter
    raw = await redis_client.hget(Keys(settings.namespace).calls("shopfront", "evt_1"), "segmetrics.upsert_contact")
    assert CallState.loads(raw).status is Status.DEAD
    assert await store.counts() == {"segmetrics": 1}
    assert set(letter) == {"id", "source", "event_id", "event_type", "vendor", "operation", "idempotency_key",
                           "attempts", "first_failed_at", "last_failed_at", "error", "event"}
    assert letter["last_failed_at"] == rfc3339(T0) and letter["last_failed_at"].endswith("Z")


async def test_list_filters_and_pages_oldest_first(store) -> None:
    """Filters combine; the cursor walks every match exactly once, oldest first."""
    made, at = [], {}
    for n in range(25):
        at[f"evt_{n}"] = T0 + n * 3
        vendor = "salesmachine" if n % 2 else "segmetrics"
        made.append(await put(store, n, at=at[f"evt_{n}"], vendor=vendor, type_="purchase" if n % 3 else "signup"))
    seen, cursor = [], None
    while True:
        items, cursor = await store.page(Filter(vendor="segmetrics"), limit=4, cursor=cursor)
        seen.extend(items)
        if cursor is None:
            break
    assert [x["id"] for x in seen] == [x["id"] for x in made if x["vendor"] == "segmetrics"]
    items, _ = await store.page(Filter(vendor="segmetrics", type="signup", since=T0 + 10, until=T0 + 40))
    expected = [x["event_id"] for x in made if x["vendor"] == "segmetrics" and x["event_type"] == "signup"
                and T0 + 10 <= at[x["event_id"]] <= T0 + 40]
    assert [x["event_id"] for x in items] == expected and expected


async def test_replay_requeues_with_fresh_state_and_leaves_the_store(store, redis_client, settings) -> None:
    keys = Keys(settings.namespace)
    letter = await put(store, 7, at=T0)
    assert await store.replay(letter["id"]) is True
    assert await store.get(letter["id"]) is None
    assert await store.counts() == {"segmetrics": 0}
    state = CallState.loads(await redis_client.hget(keys.calls("shopfront", "evt_7"), "segmetrics.upsert_contact"))
    assert state.status is Status.PENDING and state.attempts == 0
    assert orjson.loads(await redis_client.get(keys.event("shopfront", "evt_7"))) == letter["event"]
    jobs = await redis_client.zrange(keys.queue, 0, -1)
    assert jobs == [keys.job_id("shopfront", "evt_7", f"replay-{letter['id']}").encode()]
    assert await store.replay(letter["id"]) is False  # a second replay finds nothing


async def test_replay_batch_and_delete(store) -> None:
    letters = [await put(store, n, at=T0 + n) for n in range(5)]
    assert await store.delete(letters[0]["id"]) is True
    assert await store.delete(letters[0]["id"]) is False
    assert await store.replay_batch(letters) == 4
    assert (await store.page())[0] == []


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"until": "2026-11-24T10:00:00"}, {"vendor": 3}])
def test_bad_filters_name_the_field(params) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        Filter.parse(params)


@pytest.mark.parametrize("cursor", ["", "abc", "12:", ":x"])
def test_bad_cursor(cursor) -> None:
    with pytest.raises(ValueError):
        parse_cursor(cursor)


async def test_delete_batch_counts_what_was_there(store) -> None:
    letters = [await put(store, n, at=T0 + n) for n in range(4)]
    assert await store.delete(letters[0]["id"]) is True
    assert await store.delete_batch(letters) == 3
    assert await store.counts() == {"segmetrics": 0}
    assert (await store.page())[0] == []


async def test_a_letter_pins_its_ledger_event_and_order_until_it_is_replayed(store, redis_client, settings) -> None:
    """Dead letters never expire: while one exists its event's ledger, body and order hash keep no TTL, so a
    replay however late finds what it needs; the last replay (or purge) gives the TTLs back."""
    keys = Keys(settings.namespace)
    body = orjson.dumps(event(1))
    assert await store.intake.accept("shopfront", event(1), body)
    one = await put(store, 1, at=T0)
    two = await put(store, 1, at=T0 + 1, vendor="salesmachine")
    ledger, stored, order = keys.calls("shopfront", "evt_1"), keys.event("shopfront", "evt_1"), \
        keys.order("shopfront", "contact:c1")
    assert [await redis_client.ttl(k) for k in (ledger, stored, order)] == [-1, -1, -1]
    assert await store.replay(one["id"])
    assert [await redis_client.ttl(k) for k in (ledger, stored)] == [-1, -1]  # the other letter still pins them
    assert await store.delete(two["id"])
    assert all(0 < ttl <= store.intake.event_ttl for ttl in [await redis_client.ttl(k) for k in (ledger, stored)])
    assert not await redis_client.exists(order)  # it held nothing but the pin


async def test_a_replay_after_the_ledger_expired_owes_only_the_replayed_call(store, redis_client, settings) -> None:
    """A letter older than its event's TTL (written before letters pinned their event): the replay recreates
    the ledger naming only its call, so the event's other calls, long delivered, are not sent again."""
    from store.calls import Ledger

    keys = Keys(settings.namespace)
    letter = await put(store, 1, at=T0)
    await redis_client.delete(keys.calls("shopfront", "evt_1"), keys.event("shopfront", "evt_1"))
    assert await store.replay(letter["id"])
    ledger = Ledger.parse(await redis_client.hgetall(keys.calls("shopfront", "evt_1")))
    assert ledger.only_listed and set(ledger.states) == {"segmetrics.upsert_contact"}
    assert ledger.states["segmetrics.upsert_contact"].status is Status.PENDING
    assert orjson.loads(await redis_client.get(keys.event("shopfront", "evt_1"))) == letter["event"]
    assert ledger.version is not None and ledger.version.endswith(":0")
