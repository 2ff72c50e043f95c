"""The safety net of SPEC rule 5: an event that still owes calls always has a job.

arq can lose a job without our code ever seeing it (a job key that expired, a job that outran job_timeout,
whatever Redis or arq does next). Every accepted event is listed in `Keys.owed` until a run finds all of its
calls final; the reconciler looks at the entries it has not looked at for `grace` seconds and, for each
event whose job is no longer in the queue, enqueues the job again (same job id, same arq format as the
intake). Any worker may run it; a lock with the interval's TTL makes one at a time, about once per interval
across the fleet. A job enqueued for an event whose other job still exists (a replay's) is harmless: the
event lease runs them one after another and the second finds nothing due.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import structlog

from store.intake import job_bytes
from worker.deps import Deps

log = structlog.get_logger("sluice.worker")

RECONCILE_LUA = """
local now, job_ttl, n = ARGV[1], ARGV[2], 0
for i = 3, #ARGV, 5 do
  local member, job_id, job, ledger, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('EXISTS', body) == 0 then
    redis.call('ZREM', KEYS[1], member)
  elseif redis.call('ZSCORE', KEYS[2], job_id) then
    redis.call('ZADD', KEYS[1], now, member)
  else
    redis.call('SET', 'arq:job:' .. job_id, job, 'PX', job_ttl)
    redis.call('ZADD', KEYS[2], now, job_id)
    redis.call('ZADD', KEYS[1], now, member)
    n = n + 1
  end
end
return n
"""
"""KEYS: owed set, queue. ARGV: now (ms), job TTL (ms), then per event: owed member, job id, job, ledger key,
event key. An event whose body expired owes nothing any more; one whose job is queued is looked at again
after another grace period; one without a job gets it back."""

PAGE = 200
MAX_PAGES = 50


async def reconcile(deps: Deps, *, grace: float) -> int:
    """One pass over the owed events not looked at for `grace` seconds; how many jobs it enqueued again."""
    d = deps
    script = d.redis.register_script(RECONCILE_LUA)
    enqueued = 0
    for _ in range(MAX_PAGES):
        now_ms = int(d.clock() * 1000)
        members = await d.redis.zrangebyscore(d.keys.owed, "-inf", now_ms - int(grace * 1000), start=0, num=PAGE)
        if not members:
            break
        args: list[Any] = [now_ms, d.intake.job_ttl_ms]
        for raw in members:
            member = raw.decode()
            source, _, event_id = member.partition("/")
            args += [member, d.keys.job_id(source, event_id), job_bytes(source, event_id, now_ms),
                     d.keys.calls(source, event_id), d.keys.event(source, event_id)]
        enqueued += int(await script(keys=[d.keys.owed, d.keys.queue], args=args))
        if len(members) < PAGE:
            break
    if enqueued:
        log.warning("jobs_restored", count=enqueued)
    return enqueued


def grace_seconds(deps: Deps) -> float:
    """How long an owed event may go without a job before it gets one again: well past the longest time a
    job of a living worker can be out of the queue for good reason (none: arq keeps it queued while it
    runs), and past a dead worker's pickup."""
    return max(60.0, 2 * deps.timing.pickup_seconds)


async def reconcile_forever(deps: Deps, rng: random.Random | None = None) -> None:
    """Every `[worker] reconcile_seconds` (with jitter), reconcile if no other worker did in that interval."""
    interval = deps.settings.worker.reconcile_seconds
    rng = rng or random.Random()
    while True:
        await asyncio.sleep(interval * rng.uniform(0.8, 1.2))
        try:
            if await deps.redis.set(deps.keys.reconcile_lock, "1", nx=True, px=int(interval * 1000)):
                await reconcile(deps, grace=grace_seconds(deps))
        except Exception as exc:  # Redis away: the next interval tries again
            log.warning("reconcile_failed", error=f"{type(exc).__name__}: {exc}")
