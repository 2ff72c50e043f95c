"""Chaos: 3 real worker processes, 5,000 mixed events offered at a steady rate, a worker SIGKILLed every 2 s
and restarted, SegMetrics answering 503 to 30% of calls, and one Redis restart (appendonly, fsync always).

Figures: events accepted, calls succeeded / skipped / dead-lettered, events lost (must be 0), duplicate
vendor requests (must be at most the number of kills), time to drain. `SLUICE_CHAOS_EVENTS` and
`SLUICE_CHAOS_RATE` change the size (defaults 5,000 at 80/s, about 65 s of offered load).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from core.idempotency import idempotency_key
from core.routing import DEFAULT_ROUTES, plan
from store.calls import Ledger, Status
from store.keys import Keys
from tests.conftest import base_config
from tests.reliability.support import Feeder, figures
from tests.support.contacts import event_of, expected_members, personaclick_members
from tests.support.fleet import SandboxProcess, WorkerProcess, final_statuses, unfinished, wait_until, write_config
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("SLUICE_CHAOS_EVENTS", "5000"))
RATE = float(os.environ.get("SLUICE_CHAOS_RATE", "80"))  # events offered per second, in steady small batches
KILL_EVERY = 2.0
WORKERS = 3
FAILING_VENDOR, FAILURE_SHARE = "segmetrics", 0.3
VENDOR_LATENCY = {"segmetrics": 0.01, "salesmachine": 0.02, "personaclick": 0.03, "infinity": 0.015}
# 11 tries: a call fails for good only if 11 draws in a row hit the 30% (p = 0.3**11, about 2e-6 per call)
SCHEDULE = [0.05, 0.1, 0.2, 0.4, 0.8, 1, 1, 1, 1, 1]
MIX = ("signup", "purchase", "refund", "churn", "segment.join", "segment.leave", "contact.delete",
       "ad.performance", "segment.upsert", "segment.delete")


CONTACTS = 211  # a prime: every contact sees every type; one contact's calls go one at a time per vendor


def make_events(n: int) -> list[dict[str, Any]]:
    events = [event_of(MIX[i % len(MIX)], 1_795_000_000.0 + i, f"evt_chaos_{i}", i % CONTACTS) for i in range(n)]
    for i, event in enumerate(events):
        if event["type"] in ("segment.upsert", "segment.delete"):
            # a segment of its own: an upsert racing a delete of the same segment is another story
            event["data"]["segment"]["id"] = f"seg_{i}"
    return events


def succeeded_keys(client: redis.Redis, keys: Keys, events: list[dict[str, Any]]) -> set[str]:
    """Idempotency keys of the calls the ledger records as succeeded."""
    found = set()
    for event in events:
        for field, state in Ledger.parse(client.hgetall(keys.calls("shopfront", event["id"]))).states.items():
            if state.status is Status.SUCCEEDED:
                vendor, operation = field.split(".", 1)
                found.add(idempotency_key("shopfront", event["id"], vendor, operation))
    return found


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    process = SandboxProcess(tmp_path / "sandbox.log")
    yield process
    process.stop()


def chaos_config(tmp_path: Path, redis_url: str, namespace: str, sandbox: SandboxProcess) -> Path:
    data = base_config(redis_url, namespace)
    data["vendors"] = sandbox.vendor_tables()
    data["vendors"]["salesmachine"]["rate_per_second"] = 10_000  # the limit has its own test
    data["vendors"]["salesmachine"]["api_token_v2"] = ""  # so contact.delete's Salesmachine call is skipped
    data["delivery"] = {"timeout_seconds": 2, "schedule_seconds": SCHEDULE, "dedupe_seconds": 3600}
    data["worker"] = {"rate_max_wait_seconds": 0.5, "poll_delay_seconds": 0.01}
    return write_config(tmp_path / "sluice.toml", data)


def answered_keys(requests: list[dict[str, Any]]) -> set[str]:
    """Idempotency keys of requests the vendor emulators served themselves (not an injected fault), whatever
    they answered (a delete of an absent contact is a 404 the client takes as done)."""
    return {r["idempotency_key"] for r in requests
            if r["idempotency_key"] and r["status"] is not None and r["fault"] in (None, "delay")}


@pytest.mark.timeout(480)
def test_chaos(tmp_path: Path, namespace: str, sandbox_process: SandboxProcess) -> None:
    """Every accepted event ends with each call succeeded, skipped, superseded or dead-lettered; duplicates <=
    kills; every contact ends in or out of the segment as its latest event says."""
    sandbox = sandbox_process
    for vendor, latency in VENDOR_LATENCY.items():  # different latencies, so an event's calls end apart
        sandbox.inject(vendor=vendor, delay=latency, times=10**7)
    sandbox.inject(vendor=FAILING_VENDOR, status=503, times=10**7, probability=FAILURE_SHARE, seed=20261124)
    events = make_events(EVENTS)
    keys = Keys(namespace)
    rng = random.Random(7)
    with RedisServer(appendonly=True) as server:
        config = chaos_config(tmp_path, server.url, namespace, sandbox)
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        feeder = Feeder(client, keys)
        workers = [WorkerProcess(config, tmp_path / f"w{i}.log") for i in range(WORKERS)]
        flow_seconds = EVENTS / RATE
        restart_at = flow_seconds / 2
        kills, restarted, offered = 0, False, 0
        try:
            began = time.monotonic()
            next_kill = began + KILL_EVERY
            while offered < EVENTS:
                now = time.monotonic()
                due = min(EVENTS, int((now - began) * RATE) + 1)
                if due > offered:
                    feeder.offer(events[offered:due])
                    offered = due
                if now >= next_kill:
                    victim = rng.randrange(WORKERS)
                    workers[victim].kill()
                    workers[victim] = WorkerProcess(config, tmp_path / f"w{victim}.log")
                    kills += 1
                    next_kill += KILL_EVERY
                if not restarted and now - began >= restart_at:
                    server.restart()  # SIGTERM: Redis writes its AOF and stops; the same dir on start
                    restarted = True
                time.sleep(0.005)
            fed = time.monotonic()
            wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 300, 0.5,
                       "every call to be final")
            drained = time.monotonic()
        finally:
            for w in workers:
                w.stop()
        counts = final_statuses(client, keys, "shopfront", events)
        lost = unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events)
        dead_letters = client.zcard(keys.dead_index)
        ids = [i.decode() for i in client.zrange(keys.dead_index, 0, -1)]
        letters = [orjson.loads(v) for v in client.mget([keys.dead_letter(i) for i in ids])] if ids else []
        ledger_succeeded = succeeded_keys(client, keys, events)
        client.close()
    requests = sandbox.requests()
    duplicates = sandbox.duplicate_count()
    members = personaclick_members(sandbox.http.get("/state").json())
    planned = {idempotency_key("shopfront", e["id"], v, o): e["id"] for e in events for v, o in plan(e, DEFAULT_ROUTES)}
    vendor_answered = answered_keys(requests)
    failing = [r for r in requests if r["vendor"] == FAILING_VENDOR and r["fault"] == "status"]
    figures("chaos", {
        "events_offered": EVENTS, "events_accepted": feeder.accepted, "offered_rate_per_s": RATE,
        "calls_planned": len(planned), "succeeded": counts.get("succeeded", 0), "skipped": counts.get("skipped", 0),
        "dead_lettered": counts.get("dead", 0), "superseded": counts.get("superseded", 0), "dead_letter_records": dead_letters, "events_lost": len(lost),
        "kills": kills, "redis_restarts": int(restarted), "feeder_redis_errors": feeder.redis_errors,
        "vendor_requests": len(requests), f"{FAILING_VENDOR}_503s": len(failing),
        "duplicate_vendor_requests": duplicates, "feed_s": round(fed - began, 1),
        "drain_after_feed_s": round(drained - fed, 1), "total_s": round(drained - began, 1),
    })
    assert feeder.accepted == EVENTS
    assert lost == []
    assert sum(counts.values()) == len(planned)
    # dead letters are not losses, but each one must be in the store, with its reason (none expected here)
    assert counts.get("dead", 0) == dead_letters == len(letters)
    for letter in letters[:5]:
        print("dead letter:", letter["event_id"], letter["vendor"], letter["operation"], letter["error"])
    assert all(letter["error"]["class"] == "transient" for letter in letters)
    # the ledger never says "succeeded" for a call no vendor served
    assert len(ledger_succeeded) == counts.get("succeeded", 0)
    names = {idempotency_key("shopfront", e["id"], v, o): f"{e['id']} {e['type']} {v}.{o}"
             for e in events for v, o in plan(e, DEFAULT_ROUTES)}
    for key in sorted(ledger_succeeded - vendor_answered)[:10]:
        print("succeeded but never served:", names[key])
    for dup in sandbox.http.get("/duplicates").json()["duplicates"]:
        print(f"duplicate: {names.get(dup['idempotency_key'])} {dup['method']} sent {dup['times']} times")
    assert ledger_succeeded <= vendor_answered
    assert duplicates <= kills
    assert members == expected_members(events)  # rule 8: each contact as its latest event says
