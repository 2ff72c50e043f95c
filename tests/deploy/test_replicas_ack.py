"""`[redis] replicas_ack`: a 2xx only once that many replicas have the event (one WAIT per group-commit batch).

The negative control first: without it, an event answered 202 is lost when the primary dies before its replica
got the write and the replica is promoted. With it, the ingress answers 503 instead, within
`replicas_ack_timeout_ms`, and so does the sender's retry (the duplicate path must not answer 200 on the
strength of a write no replica has); once the replica has it, the retry is a 200 and the event survives the
same fail-over."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import orjson
import pytest
import redis

from cli.samples import sample_event
from config.settings import settings_from_mapping
from ingress.app import create_app
from store.keys import Keys
from tests.conftest import base_config
from tests.ingress.conftest import serve, standard_headers
from tests.support.fleet import wait_until
from tests.support.redis_server import RedisServer

TIMEOUT_MS = 300


def linked(primary: RedisServer, replica: RedisServer) -> bool:
    """The replica acknowledges a write (right after its initial sync, for a moment, it does not yet)."""
    p = redis.Redis(port=primary.port)
    try:
        p.set("linked-probe", 1)
        return int(p.wait(1, 100)) >= 1
    finally:
        p.close()


async def post(http: httpx.AsyncClient, event: dict[str, Any]) -> tuple[int, float]:
    body = orjson.dumps(event)
    headers = {"content-type": "application/json", **standard_headers(body, time.time(), msg_id=event["id"])}
    began = time.monotonic()
    status = (await http.post("/webhooks/shopfront", content=body, headers=headers)).status_code
    return status, time.monotonic() - began


def cut_off(primary: RedisServer, replica: RedisServer) -> None:
    """The replica stops (SIGSTOP) and the primary drops its link: nothing written from now on reaches the
    replica, not even into its socket buffer (a stopped replica would still read that when it wakes up)."""
    replica.proc.send_signal(signal.SIGSTOP)
    client = redis.Redis(port=primary.port)
    client.client_kill_filter(_type="slave")
    client.close()


def promote(replica: RedisServer) -> redis.Redis:
    client = redis.Redis(port=replica.port)
    client.replicaof("NO", "ONE")
    return client


@pytest.mark.parametrize("replicas_ack", [0, 1])
def test_an_acknowledged_event_survives_the_primary_only_with_replicas_ack(replicas_ack: int) -> None:
    keys = Keys("ack")
    with RedisServer() as primary, RedisServer(replica_of=primary.port) as replica:
        wait_until(lambda: linked(primary, replica), 10, 0.02, "the replica to sync")
        data = {**base_config(primary.url, keys.namespace),
                "redis": {"replicas_ack": replicas_ack, "replicas_ack_timeout_ms": TIMEOUT_MS}}
        settings = settings_from_mapping(data, {})
        event = sample_event("signup", time.time(), "evt_ack_1")

        async def flow() -> list[tuple[int, float]]:
            async with serve(create_app(settings)) as http:
                answers = [await post(http, sample_event("signup", time.time(), "evt_ack_0"))]
                cut_off(primary, replica)
                answers += [await post(http, event), await post(http, event)]  # the sender retries
                if replicas_ack:
                    replica.proc.send_signal(signal.SIGCONT)
                    await asyncio.to_thread(wait_until, lambda: linked(primary, replica), 10, 0.02, "catching up")
                    answers.append(await post(http, event))
                    replica.proc.send_signal(signal.SIGSTOP)
                return answers

        answers = asyncio.run(flow())
        primary.stop(kill=True)
        replica.proc.send_signal(signal.SIGCONT)
        survivor = promote(replica)
        kept = bool(survivor.exists(keys.event("shopfront", event["id"])))
        survivor.close()
    statuses = [status for status, _ in answers]
    if replicas_ack == 0:
        assert statuses == [202, 202, 200]
        assert not kept, "the negative control: without replicas_ack the acknowledged event is lost"
    else:
        assert statuses == [202, 503, 503, 200]
        assert all(TIMEOUT_MS / 1000 <= took < TIMEOUT_MS / 1000 + 0.5 for _, took in answers[1:3]), answers
        assert kept


async def test_one_wait_covers_a_whole_batch(make_settings: Any) -> None:
    """Concurrent webhooks share a round trip and its WAIT: far fewer WAITs than events; all answered 202."""
    with RedisServer() as primary, RedisServer(replica_of=primary.port) as replica:
        await asyncio.to_thread(wait_until, lambda: linked(primary, replica), 10, 0.02, "the replica to sync")
        settings = settings_from_mapping({**base_config(primary.url, "batch"), "redis": {"replicas_ack": 1}}, {})
        async with serve(create_app(settings)) as http:
            answers = await asyncio.gather(*(post(http, sample_event("signup", time.time(), f"evt_b{i}"))
                                             for i in range(64)))
        client = redis.Redis(port=primary.port)
        waits = client.info("commandstats")["cmdstat_wait"]["calls"]
        client.close()
    assert [s for s, _ in answers] == [202] * 64
    assert waits < 64


def test_a_retried_event_is_not_answered_duplicate_before_a_replica_has_it() -> None:
    """A replica still connected but not acknowledging (stopped): the first copy is stored and answered 503;
    the retry, on a fresh connection, must not get 200 from a WAIT that only covers that connection's own
    writes (none: a duplicate writes nothing). It gets 503 until the replica has the event, then 200."""
    with RedisServer() as primary, RedisServer(replica_of=primary.port) as replica:
        wait_until(lambda: linked(primary, replica), 10, 0.02, "the replica to sync")
        data = {**base_config(primary.url, "dup"), "redis": {"replicas_ack": 1, "replicas_ack_timeout_ms": TIMEOUT_MS}}
        settings = settings_from_mapping(data, {})
        event = sample_event("signup", time.time(), "evt_dup_1")

        async def flow() -> list[int]:
            async with serve(create_app(settings)) as http:
                replica.proc.send_signal(signal.SIGSTOP)
                answers = [(await post(http, event))[0], (await post(http, event))[0]]
                replica.proc.send_signal(signal.SIGCONT)
                return [*answers, (await post(http, event))[0]]

        assert asyncio.run(flow()) == [503, 503, 200]
