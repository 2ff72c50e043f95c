"""Vendor outage: Salesmachine refuses connections (nothing listens on its port) for a stretch of the retry
schedule, then comes back. Every call is delivered, none is dead-lettered, and the worker's `vendor_call`
log lines show the tries spaced out on the schedule (backoff with jitter), not hammering the dead port."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import redis

from core.routing import DEFAULT_ROUTES, plan
from sandbox import sandbox_vendor_tables
from store.keys import Keys
from tests.conftest import base_config
from tests.reliability.support import Feeder, figures, log_lines, timestamp
from tests.support.contacts import event_of
from tests.support.fleet import WorkerProcess, final_statuses, unfinished, wait_until, write_config
from tests.support.redis_server import free_port
from tests.support.sandbox import SandboxServer

import pytest

pytestmark = pytest.mark.slow

VENDOR = "salesmachine"
SCHEDULE = [0.25, 0.5, 1, 2, 4, 8]  # 7 tries over about 16 s; the outage covers the first 5 of them
JITTER = 0.2
OUTAGE_SECONDS = 6.0
TYPES = ("signup", "purchase", "refund", "churn", "segment.join", "segment.leave")
EVENTS = 60


def outage_config(tmp_path: Path, redis_url: str, namespace: str, sandbox: SandboxServer, port: int) -> Path:
    data = base_config(redis_url, namespace)
    data["vendors"] = sandbox.vendor_tables()
    data["vendors"][VENDOR] = sandbox_vendor_tables(f"http://127.0.0.1:{port}", sandbox.state.credentials)[VENDOR]
    data["vendors"][VENDOR]["rate_per_second"] = 10_000
    data["delivery"] = {"timeout_seconds": 2, "schedule_seconds": SCHEDULE, "dedupe_seconds": 3600,
                        "jitter": JITTER}
    data["worker"] = {"rate_max_wait_seconds": 0.5, "poll_delay_seconds": 0.01}
    return write_config(tmp_path / "sluice.toml", data)


def tries_by_call(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """(event id, operation) -> [(time, outcome)] of the outage vendor's tries, in order."""
    tries: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for line in lines:
        if line.get("event") == "vendor_call" and line.get("vendor") == VENDOR and line["outcome"] != "skipped":
            tries[(line["event_id"], line["operation"])].append((timestamp(line), line["outcome"]))
    return {k: sorted(v) for k, v in tries.items()}


@pytest.mark.timeout(180)
def test_vendor_refusing_connections_then_back(tmp_path: Path, redis_url: str, namespace: str,
                                               sandbox: SandboxServer) -> None:
    """Calls tried while the port refuses are retried on the schedule and all delivered once it answers."""
    port = free_port()
    config = outage_config(tmp_path, redis_url, namespace, sandbox, port)
    keys = Keys(namespace)
    client = redis.Redis.from_url(redis_url)
    events = [event_of(TYPES[i % len(TYPES)], 1_795_000_000.0 + i, f"evt_out_{i}", i % 53) for i in range(EVENTS)]
    log = tmp_path / "worker.log"
    worker = WorkerProcess(config, log)
    back = SandboxServer(port=port)
    try:
        began = time.monotonic()
        Feeder(client, keys).offer(events)
        wait_until(lambda: time.monotonic() - began >= OUTAGE_SECONDS, OUTAGE_SECONDS + 1, 0.05, "the outage")
        back.start()
        restored = time.monotonic()
        wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events), 60, 0.1,
                   "every call to be final")
        drained = time.monotonic()
    finally:
        worker.stop()
        back.stop()
    counts = final_statuses(client, keys, "shopfront", events)
    dead = client.zcard(keys.dead_index)
    client.close()
    tries = tries_by_call(log_lines(log))
    failed_tries = [t for call in tries.values() for t in call if t[1] == "retrying"]
    gaps_by_step: dict[int, list[float]] = defaultdict(list)
    for call in tries.values():
        times = [t for t, _ in call]
        for step, (a, b) in enumerate(zip(times, times[1:], strict=False)):
            gaps_by_step[step].append(b - a)
    medians = [round(statistics.median(gaps_by_step[s]), 2) for s in sorted(gaps_by_step)]
    sample_key = max(tries, key=lambda k: len(tries[k]))
    first = tries[sample_key][0][0]
    figures("vendor_outage", {
        "events": EVENTS, "outage_s": OUTAGE_SECONDS, f"{VENDOR}_calls": len(tries),
        "refused_tries": len(failed_tries), "max_tries_per_call": max(len(v) for v in tries.values()),
        "succeeded": counts.get("succeeded", 0), "dead_lettered": counts.get("dead", 0),
        "schedule_s": SCHEDULE, "median_gap_s_by_try": medians,
        "sample_call_try_times_s": [round(t - first, 2) for t, _ in tries[sample_key]],
        "drain_after_back_s": round(drained - restored, 1), "total_s": round(drained - began, 1),
    })
    assert counts.get("dead", 0) == 0 and dead == 0
    assert set(counts) == {"succeeded"}
    assert len(tries) == sum(v == VENDOR for e in events for v, _ in plan(e, DEFAULT_ROUTES))
    assert all(call[-1][1] == "succeeded" for call in tries.values())
    assert all(len(call) >= 4 for call in tries.values())  # tried (and refused) several times during the outage
    # each wait is its schedule step, stretched by at most the jitter (log times also carry the ledger write
    # of each try, a few ms to tens of ms, so a single gap can look a little shorter than its step)
    for step, gaps in gaps_by_step.items():
        assert min(gaps) >= SCHEDULE[step] * 0.75, (step, min(gaps))
        assert statistics.median(gaps) >= SCHEDULE[step], (step, statistics.median(gaps))
        assert max(gaps) <= SCHEDULE[step] * (1 + JITTER) + 1.0, (step, max(gaps))
    assert medians == sorted(medians)  # backoff: the waits grow
