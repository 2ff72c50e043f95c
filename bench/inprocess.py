"""The ingress's own work per event, driven in process: no HTTP server, no load generator, a private Redis.

    .venv/bin/python bench/inprocess.py [--events 20000] [--concurrency 64] [--profile out.prof]

The `web:` app (`ingress.app:create_app`, from a bench config) is called as an ASGI app with signed `purchase`
requests, `--concurrency` of them in flight, and the process CPU time per accepted event is printed, next to a
bare ASGI endpoint (reads the body, answers 202) driven the same way. What is left is sluice's own work before
its 202 (verify, parse, validate, log, store durably), without uvicorn's share, which both pay alike.
`--profile` writes a cProfile of the sluice run (read it with `python -m pstats`); `--parts` times the steps of
the hot path one by one on one request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench.common import SECRET, SOURCE, Workdir, bench_config, figures, say, start_redis, table  # noqa: E402
from cli.samples import numbered_contact, sample_event  # noqa: E402
from cli.signing import sign_headers  # noqa: E402

Message = dict[str, Any]


def requests(count: int, now: float) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    out = []
    for i in range(count):
        event = sample_event("purchase", now, f"inproc_{i}_{int(now)}")
        event["contact"] = numbered_contact(i % 1000)
        body = orjson.dumps(event)
        headers = sign_headers("standard-webhooks", SECRET, body, now, msg_id=f"msg_{i}")
        raw = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in headers.items())]
        out.append((raw, body))
    return out


async def call(app: Any, state: dict[str, Any], headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": f"/webhooks/{SOURCE}", "raw_path": f"/webhooks/{SOURCE}".encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
             "state": state}
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    assert message["body"]
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"queued"}'})


async def drive(app: Any, state: dict[str, Any], reqs: list[Any], concurrency: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for every request, `concurrency` in flight."""
    it = iter(reqs)
    statuses: list[int] = []

    async def lane() -> None:
        for headers, body in it:
            statuses.append(await call(app, state, headers, body))

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bad = [s for s in statuses if s != 202]
    if bad:
        raise RuntimeError(f"{len(bad)} requests were not answered 202 (first: {bad[0]})")
    return cpu, wall


async def main_async(args: argparse.Namespace) -> None:
    import structlog

    from config.logging import configure_logging
    from config.settings import load_settings
    from ingress.app import create_app

    work = Workdir()
    redis, url = start_redis(work)
    try:
        config = bench_config(work, url)
        configure_logging()
        devnull = open(os.devnull, "wb")  # noqa: SIM115 - the log lines are made and written, to nowhere
        structlog.configure(logger_factory=structlog.BytesLoggerFactory(devnull))
        settings = load_settings({"SLUICE_CONFIG": str(config)})
        app = create_app(settings)
        now = time.time()
        rows = []
        async with app.router.lifespan_context(app) as state:
            warm = requests(2000, now)
            await drive(app, state, warm, args.concurrency)
            await drive(bare_app, {}, warm, args.concurrency)
            reqs = requests(args.events, now + 1)
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            cpu, wall = await drive(app, state, reqs, args.concurrency)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            bare_cpu, bare_wall = await drive(bare_app, {}, reqs, args.concurrency)
        per, bare_per = cpu / args.events * 1e6, bare_cpu / args.events * 1e6
        rows.append(("sluice web app", f"{per:.1f}", f"{args.events / wall:,.0f}"))
        rows.append(("bare ASGI endpoint", f"{bare_per:.1f}", f"{args.events / bare_wall:,.0f}"))
        print(table(["app", "CPU us per event", "events/s (one core, no HTTP)"], rows))
        print(figures(sluice_us=round(per, 1), bare_us=round(bare_per, 1)))
    finally:
        redis.stop()
        work.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", help="write a cProfile of the sluice run here")
    args = parser.parse_args()
    say(f"driving {args.events} events in process, {args.concurrency} in flight")
    import uvloop  # as the web: process runs

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
