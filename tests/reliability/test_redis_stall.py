"""A Redis that freezes longer than a job's timeout (a managed Redis failing over freezes for 10-60 s): runs
cut themselves off at their deadline and are retried, so arq never times a job out and drops it; every
accepted event is delivered.

Figures: events accepted before, during (none can be) and after the freeze, calls sent while Redis was frozen
(their outcomes cannot be recorded: the README's one window for a duplicate), duplicate vendor requests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from core.routing import DEFAULT_ROUTES
from store.keys import Keys
from tests.conftest import base_config
from tests.reliability.support import Feeder, figures
from tests.support.contacts import event_of
from tests.support.fleet import SandboxProcess, WorkerProcess, final_statuses, unfinished, wait_until, write_config
from tests.support.redis_server import RedisServer
from worker.app import worker_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TYPES = ("signup", "purchase", "segment.join", "segment.leave", "churn", "ad.performance")
BEFORE, AFTER = 40, 20


@pytest.fixture
def sandbox_process(tmp_path: Path):
    process = SandboxProcess(tmp_path / "sandbox.log")
    yield process
    process.stop()


def test_redis_frozen_longer_than_job_timeout_loses_nothing(tmp_path: Path, namespace: str,
                                                          sandbox_process: SandboxProcess) -> None:
    sandbox = sandbox_process
    sandbox.inject(vendor="personaclick", delay=0.5, times=10**6)  # a slow vendor: runs are mid-call
    sandbox.inject(vendor="segmetrics", delay=0.05, times=10**6)
    with RedisServer() as server:
        data = base_config(server.url, namespace)
        data["vendors"] = sandbox.vendor_tables()
        data["vendors"]["salesmachine"]["rate_per_second"] = 10_000
        data["delivery"] = {"timeout_seconds": 2, "schedule_seconds": [0.1, 0.2, 0.5, 1, 1, 1],
                            "dedupe_seconds": 3600}
        data["worker"] = {"rate_max_wait_seconds": 0.5, "poll_delay_seconds": 0.01}
        config = write_config(tmp_path / "sluice.toml", data)
        from config.settings import settings_from_mapping

        job_timeout = worker_settings(settings_from_mapping(data, {}))["job_timeout"]
        freeze = job_timeout + 3  # longer than arq's job timeout, and than the worker client's first retries
        keys = Keys(namespace)
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        feeder = Feeder(client, keys)
        events = [event_of(TYPES[i % len(TYPES)], 1_795_000_000.0 + i, f"evt_st_{i}", i % 17)
                  for i in range(BEFORE + AFTER)]
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            feeder.offer(events[:BEFORE])
            wait_until(lambda: len(sandbox.requests()) >= 10, 30, 0.02, "calls in flight")
            sent_before = len(sandbox.requests())
            server.pause()
            frozen_at = time.monotonic()
            wait_until(lambda: time.monotonic() - frozen_at >= freeze, freeze + 5, 0.1, "the freeze to last")
            sent_frozen = len(sandbox.requests()) - sent_before
            server.resume()
            feeder.offer(events[BEFORE:])  # events keep coming
            began = time.monotonic()
            wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 90, 0.2,
                       "every accepted event to be delivered", logs=[tmp_path / "w.log"])
            drained = time.monotonic() - began
        finally:
            worker.stop()
        counts = final_statuses(client, keys, "shopfront", events)
        lost = unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events)
        client.close()
    duplicates = sandbox.duplicate_count()
    figures("redis_stall", {
        "events_accepted": feeder.accepted, "freeze_s": round(freeze, 1), "job_timeout_s": job_timeout,
        "calls_sent_before_freeze": sent_before, "calls_sent_while_frozen": sent_frozen, "calls": counts,
        "events_lost": len(lost), "duplicate_vendor_requests": duplicates, "drain_after_thaw_s": round(drained, 1),
    })
    assert feeder.accepted == len(events)
    assert lost == []
    assert counts.get("dead", 0) == 0
    # a call answered while Redis was frozen could not be recorded and goes again (same idempotency key):
    # at most the calls of the runs that were in flight, never a second copy of anything recorded
    assert duplicates <= sent_frozen + 12
    # the runs cut themselves off in time: no job was dropped by arq and restored by the reconciler
    assert "jobs_restored" not in (tmp_path / "w.log").read_text()
    assert "TimeoutError" not in (tmp_path / "w.log").read_text()
