"""arq wiring: the worker's settings, and its start-up and shut-down hooks.

Timing rules that arq imposes and how they are met (SPEC section 5 rules 5 and 6; the figures are derived in
config/timing.py):
- a dead worker's job is picked up once its in-progress key expires, `job_timeout` + 10 s after it started,
  within timeout_seconds + 30 s (a config that would break that is refused at start-up);
- a run ends itself before its deadline, below job_timeout (arq drops a job that outruns job_timeout);
- only `arq.Retry` reschedules and arq stops calling a job after max_tries, so max_tries is effectively
  unbounded: our own per-call try count (the ledger) decides when a call is dead;
- arq's job key does not outlive its TTL: the intake sets it to the whole delivery horizon and every run
  renews it; the reconciler (worker/reconcile.py) gives a job back to any event that still owes calls;
- on SIGTERM arq stops picking jobs and waits job_completion_wait for running ones, then cancels what is left,
  which stays in the queue and is taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import orjson
from arq import func
from arq.connections import ArqRedis
from redis.asyncio import Redis

from config.settings import Settings
from core.clock import Clock, system_clock
from core.routing import VENDORS
from handlers.registry import Vendors, build_http_client
from store.batch import PipelineBatcher
from store.connection import worker_redis
from store.dead_letters import DeadLetterStore
from store.intake import DELIVER, Intake
from store.keys import Keys
from worker.deliver import DeliveryScripts, deliver
from worker.deps import Deps
from worker.ratelimit import RateLimiter
from worker.reconcile import reconcile_forever
from worker.retry import RetryPolicy

UNBOUNDED_TRIES = 1_000_000


async def build_deps(settings: Settings, *, redis: Redis | None = None, vendors: Any = None,
                     clock: Clock = system_clock, rng: random.Random | None = None) -> Deps:
    """Everything a job needs. `vendors` defaults to the real clients; tests may pass another VendorPort."""
    owns_redis = redis is None
    redis = redis or worker_redis(settings)
    keys = Keys(settings.namespace)
    http = None
    if vendors is None:
        http = build_http_client(settings)
        vendors = Vendors(settings, http)
    intake = Intake(redis, keys, settings.delivery, clock)
    rates = {v: settings.rate_per_second(v) for v in VENDORS}
    batcher = PipelineBatcher(redis)
    return Deps(
        settings=settings, keys=keys, redis=redis, http=http, vendors=vendors, intake=intake,
        dead_letters=DeadLetterStore(redis, keys, intake, clock),
        limiter=RateLimiter(redis, keys, rates, max_wait=settings.worker.rate_max_wait_seconds, batcher=batcher),
        batcher=batcher,
        policy=RetryPolicy.from_settings(settings.delivery), clock=clock, rng=rng or random.Random(),
        timing=settings.timing, scripts=DeliveryScripts.register(redis), owns_redis=owns_redis,
    )


def redis_pool(settings: Settings) -> ArqRedis:
    """arq's client, ready made by `store.connection` like every other (not arq's RedisSettings.from_dsn, which
    reads a URL differently from redis-py: no percent-decoding, TLS certificates always required)."""
    return worker_redis(settings, redis_class=ArqRedis, job_serializer=orjson.dumps, job_deserializer=orjson.loads,
                        default_queue_name=Keys(settings.namespace).queue)


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for arq.Worker (or run_worker)."""

    async def startup(ctx: dict[str, Any]) -> None:
        if "deps" not in ctx:
            ctx["deps"] = await build_deps(settings)
            ctx["owned_deps"] = True
        ctx["reconciler"] = asyncio.ensure_future(reconcile_forever(ctx["deps"]))

    async def shutdown(ctx: dict[str, Any]) -> None:
        reconciler = ctx.pop("reconciler", None)
        if reconciler is not None:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        if ctx.get("owned_deps"):
            await ctx["deps"].aclose()

    options: dict[str, Any] = {
        "functions": [func(deliver, name=DELIVER, max_tries=UNBOUNDED_TRIES)],
        "queue_name": Keys(settings.namespace).queue,
        "redis_pool": redis_pool(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker.max_jobs,
        "poll_delay": settings.worker.poll_delay_seconds,
        "job_timeout": settings.timing.job_timeout,
        "max_tries": UNBOUNDED_TRIES,
        "keep_result": 0,
        "job_serializer": orjson.dumps,
        "job_deserializer": orjson.loads,
        "job_completion_wait": settings.timing.job_timeout,
        "health_check_interval": 60,
    }
    options.update(overrides)
    return options
