"""End to end: signed webhooks in, vendor calls out, against the vendor emulators with no added latency.

    .venv/bin/python bench/e2e.py [--rounds 2] [--events 3000] [--rate-seconds 10]

One `web:` process (uvicorn, the Procfile's settings), 1 then 2 `worker:` processes (`python -m worker`), the
sandbox (bench/timed_sandbox.py: the emulators, noting each vendor request's arrival) and a private Redis.
Events are `purchase` with a subscription: 3 vendor calls each (segmetrics.upsert_invoice,
segmetrics.upsert_subscription, salesmachine.track_event); Salesmachine's rate limit is raised to 100,000/s.
Scenarios, alternated in every round, Redis emptied and the sandbox reset before each:
  arq-default / arq-tuned  stock arq draining no-op jobs (bench/arq_noop.py), the ceiling, in jobs/s
  arq-sluice               the same no-op jobs drained by sluice's SluiceWorker (tuned settings), for reference
  1 worker / 2 workers     --events posted at full load (64 connections): events/s from the first POST to the
                           last vendor call, vendor calls/s, per-event latency (POST to its last vendor call)
  ... unordered            the same with `[delivery] ordering = false` in the workers' config: what rule 8 costs
  100/s                    1 worker, events posted at a fixed 100/s for --rate-seconds: the same latencies
Events are about --contacts different people (rule 8 sends one person's calls one at a time per vendor).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    SOURCE, VENV_BIN, Proc, Workdir, bench_config, figures, free_port, median, percentile, post_all,
    proc_cpu_seconds, signed_request, say, start_redis, table, uvicorn,
)
from core.idempotency import idempotency_key  # noqa: E402
from sandbox.config import sandbox_vendor_tables  # noqa: E402

CALLS = (("segmetrics", "upsert_invoice"), ("segmetrics", "upsert_subscription"), ("salesmachine", "track_event"))


class System:
    """Redis, the sandbox and one web process, up for the whole benchmark; workers come and go."""

    def __init__(self, work: Workdir) -> None:
        self.work = work
        self.procs: list[Proc] = []
        self.redis_proc, self.url = start_redis(work)
        self.procs.append(self.redis_proc)
        self.redis = redis.Redis.from_url(self.url)
        port = free_port()
        self.sandbox = Proc("sandbox", [sys.executable, "bench/timed_sandbox.py", "--port", str(port)], work,
                            port=port)
        self.procs.append(self.sandbox)
        self.sandbox_http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        vendors = sandbox_vendor_tables(f"http://127.0.0.1:{port}")
        vendors["salesmachine"]["rate_per_second"] = 100000
        delivery: dict[str, Any] = {"timeout_seconds": 10, "schedule_seconds": [0.5, 1, 2]}
        self.config = bench_config(work, self.url, vendors=vendors, delivery=delivery)
        self.unordered = bench_config(work, self.url, vendors=vendors, name="unordered.toml",
                                      delivery={**delivery, "ordering": False})
        self.contacts = 1000
        self.web = uvicorn("web", "ingress.app:create_app", self.config, work, cpus="0,1")
        self.procs.append(self.web)
        self.workers: list[Proc] = []
        self.batch = 0

    def fresh(self) -> None:
        self.redis.flushall()
        self.sandbox_http.post("/_bench/reset").raise_for_status()

    def start_workers(self, n: int, *, ordering: bool = True) -> list[Proc]:
        for i in range(n):
            proc = Proc(f"worker{len(self.workers)}", [sys.executable, "-m", "worker"], self.work,
                        env={"SLUICE_CONFIG": str(self.config if ordering else self.unordered)})
            self.workers.append(proc)
        deadline = time.monotonic() + 20
        while not self.redis.exists("bench:queue:health-check"):  # written by arq once it polls
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.05)
        time.sleep(0.3)
        return self.workers[-n:]

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.stop()
        self.workers = []

    def requests(self, count: int) -> tuple[list[str], list[bytes]]:
        self.batch += 1
        now = time.time()
        ids = [f"e2e{self.batch}_{i}" for i in range(count)]
        return ids, [signed_request(self.web.port, event_id, now, person=i % self.contacts)
                     for i, event_id in enumerate(ids)]

    def wait_calls(self, expected: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while int(self.sandbox_http.get("/_bench/count").text) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.sandbox_http.get('/_bench/count').text} of {expected} vendor "
                                   "calls arrived in time")
            time.sleep(0.05)

    def run_events(self, count: int, rate: float | None = None) -> dict[str, Any]:
        """Post `count` events, wait for all their vendor calls; throughput and per-event latency."""
        ids, reqs = self.requests(count)
        procs = {"web": [self.web], "workers": self.workers, "sandbox": [self.sandbox], "redis": [self.redis_proc]}
        cpu_before = {name: sum(proc_cpu_seconds(p.pid) for p in group) for name, group in procs.items()}
        loader_before = time.process_time()
        sent, _, status = post_all(self.web.port, reqs, rate=rate)
        bad = [s for s in status if s != 202]
        if bad:
            raise RuntimeError(f"{len(bad)} posts not answered 202 (e.g. {bad[0]})")
        self.wait_calls(count * len(CALLS))
        cpu = {name: sum(proc_cpu_seconds(p.pid) for p in group) - cpu_before[name] for name, group in procs.items()}
        cpu["loader"] = time.process_time() - loader_before
        times = orjson.loads(self.sandbox_http.get("/_bench/times").content)
        last: dict[str, float] = {}
        for key, at in times:
            last[key] = max(last.get(key, 0.0), at)
        latencies = []
        for event_id, posted in zip(ids, sent, strict=True):
            done = max(last[idempotency_key(SOURCE, event_id, v, op)] for v, op in CALLS)
            latencies.append((done - posted) * 1000)
        first, end = min(sent), max(at for _, at in times)
        return {"events": count, "seconds": end - first, "events_per_s": count / (end - first),
                "calls_per_s": len(times) / (end - first), "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99), "calls": len(times),
                "cpu_ms_per_event": {name: round(seconds * 1000 / count, 3) for name, seconds in cpu.items()}}

    def arq_noop(self, jobs: int, mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "bench/arq_noop.py", self.url, str(jobs), mode], check=True,
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent).stdout
        return dict(orjson.loads(out.strip().splitlines()[-1]))

    def close(self) -> None:
        self.stop_workers()
        self.sandbox_http.close()
        for proc in reversed(self.procs):
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--default-jobs", type=int, default=1000, help="arq-default drains slowly (~200/s)")
    parser.add_argument("--contacts", type=int, default=1000, help="how many people the events are about")
    args = parser.parse_args()
    assert VENV_BIN.exists()
    work = Workdir()
    system = System(work)
    system.contacts = args.contacts
    rows: list[list[Any]] = []
    res: dict[str, list[dict[str, Any]]] = {}

    def note(r: int, name: str, out: dict[str, Any]) -> None:
        res.setdefault(name, []).append(out)
        say(f"round {r} {name}: {out}")

    try:
        say("warming up")
        system.fresh()
        system.start_workers(1)
        system.run_events(300)
        system.stop_workers()
        for r in range(1, args.rounds + 1):
            for name in ["arq-default", "arq-tuned", "arq-sluice", "1 worker", "2 workers", "1 worker unordered",
                         "2 workers unordered", "100/s"]:
                system.fresh()
                if name.startswith("arq"):
                    jobs = args.default_jobs if name == "arq-default" else args.events * 2
                    out = system.arq_noop(jobs, name.removeprefix("arq-"))
                    note(r, name, out)
                    rows.append([r, name, out["jobs"], out["seconds"], out["rate"], "", "", ""])
                    continue
                system.start_workers(2 if name.startswith("2 workers") else 1, ordering="unordered" not in name)
                if name == "100/s":
                    out = system.run_events(int(100 * args.rate_seconds), rate=100.0)
                else:
                    out = system.run_events(args.events)
                system.stop_workers()
                note(r, name, out)
                rows.append([r, name, out["events"], out["seconds"], out["events_per_s"], out["calls_per_s"],
                             out["p50_ms"], out["p99_ms"]])
        print(table(["round", "scenario", "events/jobs", "seconds", "events/s (jobs/s)", "vendor calls/s",
                     "p50 ms", "p99 ms"], rows))
        print()
        tuned = median(x["rate"] for x in res["arq-tuned"])
        summary = []
        for name, runs in res.items():
            if name.startswith("arq"):
                summary.append([name, median(x["rate"] for x in runs), "", "", "", ""])
            else:
                rate = median(x["events_per_s"] for x in runs)
                summary.append([name, rate, median(x["calls_per_s"] for x in runs),
                                median(x["p50_ms"] for x in runs), median(x["p99_ms"] for x in runs),
                                rate / tuned])
        print(table(["scenario (median of rounds)", "events/s (jobs/s)", "vendor calls/s", "p50 ms", "p99 ms",
                     "ratio to arq-tuned"], summary))
        by = {row[0]: row for row in summary}
        print(figures(
            e2e_1w_eps=by["1 worker"][1], e2e_2w_eps=by["2 workers"][1], calls_1w_per_s=by["1 worker"][2],
            calls_2w_per_s=by["2 workers"][2], p50_full_ms=by["1 worker"][3], p99_full_ms=by["1 worker"][4],
            p50_100_ms=by["100/s"][3], p99_100_ms=by["100/s"][4], arq_default_jps=by["arq-default"][1],
            arq_tuned_jps=tuned, arq_sluice_jps=by["arq-sluice"][1], ratio_1w=by["1 worker"][5],
            ratio_2w=by["2 workers"][5], target_ratio=0.5, target_p99_100_ms=50.0,
            ordering_cost_1w=by["1 worker"][1] / by["1 worker unordered"][1],
            ordering_cost_2w=by["2 workers"][1] / by["2 workers unordered"][1], target_ordering_ratio=0.85,
        ))
    finally:
        system.close()
        work.cleanup()


if __name__ == "__main__":
    main()
