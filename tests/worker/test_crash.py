"""Nothing lost, nothing doubled, with real worker processes: SIGKILL at random, SIGTERM, a Redis restart.

Each test runs `python -m worker` processes (as the Procfile does) against a real Redis and the vendor
sandbox over HTTP, and waits for outcomes with bounded polls. Figures are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from cli.samples import sample_event
from config.settings import DeliverySettings
from core.idempotency import idempotency_key
from core.routing import DEFAULT_ROUTES, plan
from store.keys import Keys
from tests.conftest import base_config
from tests.support.fleet import (
    SandboxProcess,
    WorkerProcess,
    final_statuses,
    unfinished,
    wait_until,
    write_config,
)
from tests.support.contacts import event_of, expected_members, personaclick_members
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KILLS = 5
VENDOR_LATENCY = {"segmetrics": 0.01, "salesmachine": 0.02, "personaclick": 0.03, "infinity": 0.015}
RATE = 40  # events per second offered, one at a time
MIX = ("signup", "purchase", "refund", "churn", "segment.join", "segment.leave", "contact.delete", "ad.performance")


CONTACTS = 37  # coprime with len(MIX): every contact sees every type


def make_events(n: int, prefix: str) -> list[dict[str, Any]]:
    return [event_of(MIX[i % len(MIX)], 1_795_000_000.0 + i, f"{prefix}_{i}", i % CONTACTS) for i in range(n)]


def accept_all(client: redis.Redis, keys: Keys, events: list[dict[str, Any]], source: str = "shopfront") -> None:
    """Enqueue through the same Lua script the ingress uses (sync client, one round trip per 100 events)."""
    from store.intake import ACCEPT_LUA, Intake

    script = client.register_script(ACCEPT_LUA)
    intake = Intake(client, keys, DeliverySettings(dedupe_seconds=3600))  # type: ignore[arg-type]
    with client.pipeline(transaction=False) as pipe:
        for event in events:
            script(*intake.accept_args(source, event, orjson.dumps(event)), client=pipe)
        assert all(pipe.execute())


def config_for(tmp_path: Path, redis_url: str, namespace: str, sandbox: Any, **delivery: Any) -> Path:
    data = base_config(redis_url, namespace)
    data["vendors"] = sandbox.vendor_tables()
    data["vendors"]["salesmachine"]["rate_per_second"] = 10_000  # the limit has its own test
    data["delivery"] = {"timeout_seconds": 1, "schedule_seconds": [0.05, 0.1, 0.2, 0.4], **delivery}
    data["worker"] = {"rate_max_wait_seconds": 0.5, "poll_delay_seconds": 0.01}
    return write_config(tmp_path / "sluice.toml", data)


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    process = SandboxProcess(tmp_path / "sandbox.log")
    yield process
    process.stop()


def test_sigkill_at_random_loses_nothing(tmp_path, redis_url, namespace, sandbox_process) -> None:
    """3 workers while events flow at a steady rate; at 5 random moments one worker is SIGKILLed and
    restarted. Every call must end final; each kill may cost at most one duplicate vendor request; every
    contact ends in or out of the segment as its latest event says (rule 8)."""
    sandbox = sandbox_process
    config = config_for(tmp_path, redis_url, namespace, sandbox)
    keys = Keys(namespace)
    client = redis.Redis.from_url(redis_url)
    events = make_events(400, "evt_k")
    for vendor, latency in VENDOR_LATENCY.items():  # so kills land mid-call
        sandbox.inject(vendor=vendor, delay=latency, times=10**6)
    rng = random.Random(20261124)
    flow_seconds = len(events) / RATE
    kill_at = sorted(rng.uniform(0.5, flow_seconds - 0.5) for _ in range(KILLS))
    workers = [WorkerProcess(config, tmp_path / f"w{i}.log") for i in range(3)]
    kills, accepted = 0, 0
    try:
        began = time.monotonic()
        while accepted < len(events):
            elapsed = time.monotonic() - began
            due = min(len(events), int(elapsed * RATE) + 1)
            if due > accepted:
                accept_all(client, keys, events[accepted:due])
                accepted = due
            if kill_at and elapsed >= kill_at[0]:
                kill_at.pop(0)
                victim = rng.randrange(len(workers))
                workers[victim].kill()
                kills += 1
                workers[victim] = WorkerProcess(config, tmp_path / f"w{victim}.log")
            time.sleep(0.002)
        start = time.monotonic()
        wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 100, 0.2,
                   "every call to be final", logs=[tmp_path / f"w{i}.log" for i in range(3)])
        drain = time.monotonic() - start
    finally:
        for w in workers:
            w.stop()
    counts = final_statuses(client, keys, "shopfront", events)
    duplicates = sandbox.duplicate_count()
    names = {idempotency_key("shopfront", e["id"], v, o): f"{e['id']} {v}.{o}"
             for e in events for v, o in plan(e, DEFAULT_ROUTES)}
    for dup in sandbox.http.get("/duplicates").json()["duplicates"]:
        print(f"duplicate: {names.get(dup['idempotency_key'])} sent {dup['times']} times")
    print(f"\ncrash: events={len(events)} kills={kills} calls={counts} vendor_requests={len(sandbox.requests())}"
          f" duplicate_requests={duplicates} drain_after_last_kill_s={drain:.1f}")
    assert not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events)
    assert counts.get("dead", 0) == 0
    assert duplicates <= kills
    assert personaclick_members(sandbox.http.get("/state").json()) == expected_members(events)
    client.close()


def test_sigterm_lets_the_running_call_finish(tmp_path, redis_url, namespace, sandbox) -> None:
    """SIGTERM mid-call: the call completes and is recorded, the worker exits 0, nothing is sent twice."""
    config = config_for(tmp_path, redis_url, namespace, sandbox, timeout_seconds=5)
    keys = Keys(namespace)
    client = redis.Redis.from_url(redis_url)
    sandbox.state.inject("infinity", delay=1.0, times=1)
    events = [sample_event("segment.delete", 1_795_000_000.0, "evt_term")]
    worker = WorkerProcess(config, tmp_path / "w.log")
    try:
        accept_all(client, keys, events)
        wait_until(lambda: any(r.vendor == "infinity" for r in sandbox.state.requests), 30, 0.01, "the call")
        assert worker.terminate(timeout=20) == 0
    finally:
        worker.stop()
    assert final_statuses(client, keys, "shopfront", events) == {"succeeded": 1}
    assert sandbox.state.duplicate_count() == 0
    client.close()


def test_redis_restart_with_appendonly_loses_nothing(tmp_path, namespace, sandbox) -> None:
    """Redis (appendonly, fsync always) restarts mid-run: workers ride it out and every event is delivered."""
    with RedisServer(appendonly=True) as server:
        config = config_for(tmp_path, server.url, namespace, sandbox)
        keys = Keys(namespace)
        client = redis.Redis.from_url(server.url)
        events = make_events(200, "evt_rr")
        sandbox.state.inject("*", delay=0.005, times=10**6)
        workers = [WorkerProcess(config, tmp_path / f"w{i}.log") for i in range(2)]
        try:
            accept_all(client, keys, events)
            wait_until(lambda: len(sandbox.state.requests) >= 150, 60, 0.005, "150 requests")
            server.restart()
            wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 100, 0.2,
                       "every call to be final", logs=[tmp_path / "w0.log", tmp_path / "w1.log"])
        finally:
            for w in workers:
                w.stop()
        counts = final_statuses(client, keys, "shopfront", events)
        print(f"\nredis restart: events={len(events)} calls={counts} duplicates={sandbox.state.duplicate_count()}")
        assert counts.get("dead", 0) == 0
        client.close()


def test_a_dead_workers_job_is_taken_up_within_timeout_plus_30s(tmp_path, redis_url, namespace, sandbox) -> None:
    """Rule 5: SIGKILL a worker mid-call; another worker delivers the event within timeout_seconds + 30 s."""
    config = config_for(tmp_path, redis_url, namespace, sandbox)  # timeout_seconds = 1
    keys = Keys(namespace)
    client = redis.Redis.from_url(redis_url)
    sandbox.state.inject("infinity", delay=5.0, times=1)
    events = [sample_event("segment.delete", 1_795_000_000.0, "evt_orphan")]
    first = WorkerProcess(config, tmp_path / "w0.log")
    second = None
    try:
        accept_all(client, keys, events)
        wait_until(lambda: any(r.vendor == "infinity" for r in sandbox.state.requests), 30, 0.01, "the call")
        first.kill()
        killed_at = time.monotonic()
        second = WorkerProcess(config, tmp_path / "w1.log")
        wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 1 + 30 + 5, 0.1,
                   "the orphaned job", logs=[tmp_path / "w1.log"])
        taken_up = time.monotonic() - killed_at
    finally:
        first.stop()
        if second is not None:
            second.stop()
    print(f"\norphan: delivered {taken_up:.1f} s after its worker was killed (bound: timeout_seconds + 30 = 31 s)")
    assert taken_up <= 1 + 30
    assert final_statuses(client, keys, "shopfront", events) == {"succeeded": 1}
    client.close()
