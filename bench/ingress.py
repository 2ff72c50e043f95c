"""Ingress throughput: the `web:` process vs a bare Starlette endpoint vs naive stock-arq enqueueing.

    .venv/bin/python bench/ingress.py [--rounds 3] [--seconds 8] [--connections 64]
    .venv/bin/python bench/ingress.py --variants sluice,sluice_ack1     # the cost of [redis] replicas_ack = 1

Three uvicorn servers with the Procfile's settings (uvloop, httptools, no access log), each pinned to core 0:
  sluice  `ingress.app:create_app`: verify, validate, dedupe + store + enqueue (group-committed Lua script), log
  bare    `bench.bare_app:create_app`: read the body, answer 202
  naive   `bench.naive_app:create_app`: verify, then stock `arq.enqueue_job(_job_id=...)`
wrk (one thread, 64 connections, pinned to core 1 with a private Redis) replays distinct pre-signed `purchase`
events. Rounds alternate the three servers (order rotated each round) and Redis is emptied before every run,
so every run starts from the same state. Accepted = answered 202. Ratios are taken within a round.
  sluice_ack1  the same `web:` process with `[redis] replicas_ack = 1`: the bench starts a replica of its Redis
               (pinned with it), and every batch ends with one WAIT for it
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Proc, Workdir, bench_config, figures, median, proc_cpu_seconds, request_file, run_wrk, say, start_redis, table, uvicorn,
)

VARIANTS = {
    "bare": "bench.bare_app:create_app",
    "sluice": "ingress.app:create_app",
    "naive": "bench.naive_app:create_app",
    "sluice_ack1": "ingress.app:create_app",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]

    work = Workdir()
    procs = []
    try:
        redis_proc, url = start_redis(work)
        procs.append(redis_proc)
        client = redis.Redis.from_url(url)
        config = bench_config(work, url)
        configs = {name: config for name in names}
        if "sluice_ack1" in names:
            procs.append(start_replica(work, url, client))
            configs["sluice_ack1"] = bench_config(work, url, name="ack1.toml", redis={"replicas_ack": 1})
        servers = {}
        for name in names:
            servers[name] = uvicorn(name, VARIANTS[name], configs[name], work)
            procs.append(servers[name])
        # one file serves every run: Redis is emptied before each, so its ids are new to every server
        count = int(16_000 * args.seconds)
        say(f"signing {count} requests")
        files = {name: request_file(work.path / f"{name}.req", srv.port, "evt", count)
                 for name, srv in servers.items()}
        say("warming up")
        for name, srv in servers.items():
            run_wrk(srv.port, files[name], 2, args.connections)
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        rows = []
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                client.flushall()
                cpu0 = proc_cpu_seconds(servers[name].pid)
                res = run_wrk(servers[name].port, files[name], args.seconds, args.connections)
                res["cpu_us"] = (proc_cpu_seconds(servers[name].pid) - cpu0) / max(res["requests"], 1) * 1e6
                if name.startswith("sluice"):  # every 202 is in the queue (plus those in flight when wrk stopped)
                    queued = client.zcard("bench:queue")
                    if not res["accepted"] <= queued <= res["accepted"] + args.connections:
                        raise SystemExit(f"bench: {res['accepted']} accepted but {queued} queued")
                results[name].append(res)
                say(f"round {r + 1} {name}: {res['rps']:.0f}/s p99 {res['p99_ms']:.1f} ms")
                rows.append([r + 1, name, res["rps"], res["p50_ms"], res["p99_ms"], res["cpu_us"],
                             int(res["accepted"]), int(res["other"] + res["errors"])])
        print(table(["round", "server", "accepted/s", "p50 ms", "p99 ms", "server CPU us/req", "accepted",
                     "not 202"], rows))
        print()
        summary = []
        for name in names:
            runs = results[name]
            ratio = [run["rps"] / b["rps"] for run, b in zip(runs, results["bare"], strict=True)] \
                if "bare" in results else [float("nan")]
            summary.append([name, median(x["rps"] for x in runs), median(x["p50_ms"] for x in runs),
                            median(x["p99_ms"] for x in runs), max(x["p99_ms"] for x in runs), median(ratio),
                            min(ratio), median(x["cpu_us"] for x in runs)])
        print(table(["server (median of rounds)", "accepted/s", "p50 ms", "p99 ms", "worst p99 ms",
                     "ratio to bare", "worst ratio", "CPU us/req"], summary))
        by = {row[0]: row for row in summary}
        out: dict[str, float | int | str] = {}
        if "sluice" in by:
            out.update(ingress_rps=by["sluice"][1], ingress_p50_ms=by["sluice"][2], ingress_p99_ms=by["sluice"][3])
        if "bare" in by:
            out.update(bare_rps=by["bare"][1], bare_p99_ms=by["bare"][3])
        if "naive" in by:
            out.update(naive_rps=by["naive"][1], naive_p99_ms=by["naive"][3], naive_ratio=by["naive"][5])
        if "sluice" in by:
            out.update(ratio=by["sluice"][5], target_ratio=0.5, target_p99_ms=15.0)
        if "sluice_ack1" in by and "sluice" in by:
            ack = [a["rps"] / s["rps"] for a, s in zip(results["sluice_ack1"], results["sluice"], strict=True)]
            out.update(ack1_rps=by["sluice_ack1"][1], ack1_p50_ms=by["sluice_ack1"][2],
                       ack1_p99_ms=by["sluice_ack1"][3], ack1_ratio_to_ack0=median(ack))
        print(figures(**out))
    finally:
        for proc in reversed(procs):
            proc.stop()
        work.cleanup()


def start_replica(work: Workdir, url: str, primary: redis.Redis) -> Proc:
    """A replica of the bench's Redis, pinned with it, synced (it acknowledges a write) before it is used."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    replica = start_redis(work, replica_of=port)[0]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        primary.set("bench:replica-probe", 1)
        if primary.wait(1, 100) >= 1:
            return replica
    raise SystemExit("bench: the replica did not sync within 20 s")


if __name__ == "__main__":
    main()
