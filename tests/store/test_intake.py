"""Intake: the accept script stores, dedupes and enqueues in arq's own job format, alone or batched."""

import asyncio

import orjson
import pytest
import redis.asyncio as aredis

from config.settings import DeliverySettings
from core.clock import FrozenClock
from store.intake import DELIVER, BatchingIntake, Intake, delivery_horizon_seconds
from store.keys import Keys
from tests.support.redis_server import RedisServer

BODY = b'{"id":"evt_1"}'


@pytest.mark.parametrize("kind", [Intake, BatchingIntake])
async def test_accept_once_then_duplicate(kind, redis_client, settings) -> None:
    keys = Keys(settings.namespace)
    intake = kind(redis_client, keys, settings.delivery, FrozenClock(1_795_000_000.0))
    results = await asyncio.gather(*(intake.accept("shopfront", {"id": "evt_1"}, BODY) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    assert await redis_client.get(keys.event("shopfront", "evt_1")) == BODY
    job_id = keys.job_id("shopfront", "evt_1")
    assert await redis_client.zrange(keys.queue, 0, -1, withscores=True) == [(job_id.encode(), 1_795_000_000_000.0)]
    job = orjson.loads(await redis_client.get(f"arq:job:{job_id}"))
    assert job == {"t": None, "f": DELIVER, "a": ["shopfront", "evt_1"], "k": {}, "et": 1_795_000_000_000}
    assert 0 < await redis_client.ttl(keys.seen("shopfront", "evt_1")) <= settings.delivery.dedupe_seconds


async def test_batched_accepts_of_distinct_events(redis_client, settings) -> None:
    intake = BatchingIntake(redis_client, Keys(settings.namespace), settings.delivery)
    results = await asyncio.gather(*(intake.accept("shopfront", {"id": f"evt_{i}"}, BODY) for i in range(300)))
    assert all(results)
    assert await redis_client.zcard(Keys(settings.namespace).queue) == 300


def test_job_key_outlives_the_whole_schedule() -> None:
    """arq never refreshes a job key, so it must outlive every wait of the default schedule (~1.9 days)."""
    delivery = DeliverySettings()
    assert delivery_horizon_seconds(delivery) > sum(delivery.schedule_seconds) * (1 + delivery.jitter)


async def test_scripts_survive_a_redis_restart(settings) -> None:
    """After a restart Redis has forgotten the script; the batched path loads it again."""
    with RedisServer() as server:
        client = aredis.Redis.from_url(server.url)
        intake = BatchingIntake(client, Keys(settings.namespace), settings.delivery)
        assert await intake.accept("shopfront", {"id": "a"}, BODY)
        await client.script_flush()
        assert await intake.accept("shopfront", {"id": "b"}, BODY)
        await client.aclose()


def test_the_packed_accept_is_what_redis_py_would_send(redis_client, settings) -> None:
    """BatchingIntake packs its script call from a template (the constant places once): the bytes are exactly
    redis-py's packing of `accept_args`, for events with and without a contact's fence, whatever their text."""
    from redis.asyncio.connection import Connection

    from store.resp import PackedCommand

    intake = BatchingIntake(redis_client, Keys(settings.namespace), settings.delivery, FrozenClock(1_795_000_000.0))
    events = [
        {"id": "evt_1", "type": "purchase", "occurred_at": "2026-11-24T10:00:00Z", "contact": {"id": "c1"}},
        {"id": "evt_2", "type": "contact.delete", "occurred_at": "2026-11-24T10:00:01Z", "contact": {"id": "ü 7"}},
        {"id": "evt_3", "type": "segment.delete", "data": {"segment": {"id": 4}}},
        {"id": "evt_4", "type": "contact.delete", "contact": {"id": 12}},
        {"id": "evt_5", "type": "signup", "contact": {"id": "c1"}},
    ]
    for event in events:
        body = orjson.dumps({**event, "note": "é"})
        command = intake.accept_command("shopfront", event, body)
        keys, args = intake.accept_args("shopfront", event, body)
        expected = b"".join(Connection().pack_commands([["EVALSHA", intake._accept.sha, len(keys), *keys, *args]]))
        assert isinstance(command, PackedCommand) and command.resp == expected
        assert command[:2] == ("EVALSHA", intake._accept.sha)
