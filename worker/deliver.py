"""The delivery job: one arq job per event, each vendor call on its own (SPEC section 5).

A run takes the event's lease, loads the event and its ledger in one round trip, sends every call that is
due (concurrently), records each outcome as soon as the vendor answered, and asks arq to run it again when
the earliest remaining call is due. Calls already succeeded, skipped or dead are never sent again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import orjson
import structlog
from arq import Retry

from core.errors import DeliveryError, PermanentError
from core.idempotency import idempotency_key
from core.routing import plan
from store.batch import queue_script
from store.calls import CallState, Status
from store.dead_letters import dead_letter_record, new_id
from store.metrics import call_counters
from worker.deps import Deps

log = structlog.get_logger("sluice.worker")

RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


REDIS_TROUBLE_DEFER = 1.0


async def deliver(ctx: dict[str, Any], source: str, event_id: str) -> str:
    """arq entry point; returns a short summary for arq's log.

    arq drops a job that raises anything but Retry, so nothing else may escape: when Redis itself fails
    (a restart, a fail-over), the whole run is tried again a moment later. Every call outcome already
    recorded stays recorded, and a call whose outcome could not be recorded is sent again with its key.
    """
    # arq runs each job in its own task, so this context is the job's own: every line it logs carries it
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), job_try=ctx.get("job_try"))
    try:
        return await EventDelivery(ctx["deps"], source, event_id).run()
    except Retry:
        raise
    except Exception as exc:
        log.warning("run_failed", source=source, event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        raise Retry(defer=REDIS_TROUBLE_DEFER) from exc


class EventDelivery:
    def __init__(self, deps: Deps, source: str, event_id: str) -> None:
        self.deps = deps
        self.source = source
        self.event_id = event_id
        self.calls_key = deps.keys.calls(source, event_id)
        self.lease_key = deps.keys.lease(source, event_id)

    async def run(self) -> str:
        d = self.deps
        token = secrets.token_hex(8)

        def take_lease_and_load(pipe: Any) -> int:
            pipe.set(self.lease_key, token, nx=True, px=d.lease_ms)
            pipe.pttl(self.lease_key)
            pipe.get(d.keys.event(self.source, self.event_id))
            pipe.hgetall(self.calls_key)
            return 4

        # in the shared pipeline: under load, the runs starting together share one round trip
        leased, lease_ttl, body, raw_states = await d.batcher.submit(take_lease_and_load)
        if not leased:  # another worker is delivering this event right now (e.g. a replay overlapping)
            raise Retry(defer=max(int(lease_ttl), 100) / 1000)
        try:
            if body is None:
                log.warning("event_missing", source=self.source, event_id=self.event_id)
                return "missing"
            states = {k.decode(): CallState.loads(v) for k, v in raw_states.items()}
            next_due = await self.run_calls(orjson.loads(body), states)
        finally:
            release = [self.lease_key], [token]
            await asyncio.shield(d.batcher.submit(lambda pipe: queue_script(pipe, d.release_lease, *release)))
        if next_due is not None:
            raise Retry(defer=max(0.0, next_due - d.clock()))
        return "done"

    async def run_calls(self, event: dict[str, Any], states: dict[str, CallState]) -> float | None:
        """Send every due call; the time the earliest unfinished call is due next, or None when all are final."""
        now = self.deps.clock()
        waiting: list[float] = []
        due = []
        for vendor, operation in plan(event, self.deps.settings.route_table):
            state = states.get(f"{vendor}.{operation}", CallState())
            if state.status.final:
                continue
            if not self.deps.vendors.is_configured(vendor, operation):
                await self.record(vendor, operation, CallState(status=Status.SKIPPED), "skipped", None)
            elif state.next_at is not None and state.next_at > now:
                waiting.append(state.next_at)
            else:
                due.append(self.call(event, vendor, operation, state))
        results = await asyncio.gather(*due)
        waiting.extend(t for t in results if t is not None)
        return min(waiting) if waiting else None

    async def call(self, event: dict[str, Any], vendor: str, operation: str, state: CallState) -> float | None:
        """One try of one call, its outcome recorded; when it is due again, or None when it is final."""
        d = self.deps
        if state.slot is None:  # a call deferred by the rate limit already holds its slot
            wait = await d.limiter.reserve(vendor)
            if wait > d.limiter.max_wait:
                held = state.deferred(d.clock() + wait)
                await self.record(vendor, operation, held, "rate_limited", None)
                return held.next_at
            if wait:
                await asyncio.sleep(wait)
        key = idempotency_key(self.source, self.event_id, vendor, operation)
        started = time.perf_counter()
        try:
            status = await d.vendors.perform(vendor, operation, event, idempotency_key=key,
                                             timeout=d.settings.delivery.timeout_seconds)
        except DeliveryError as err:
            return await self.failed(event, vendor, operation, state, err, time.perf_counter() - started)
        except Exception as exc:  # a bug must not become endless retries: dead-letter it with the reason
            bug = PermanentError(f"internal error in {vendor}.{operation}: {type(exc).__name__}: {exc}")
            log.exception("call_crashed", source=self.source, event_id=self.event_id, vendor=vendor,
                          operation=operation)
            return await self.failed(event, vendor, operation, state, bug, time.perf_counter() - started)
        await self.record(vendor, operation, state.succeeded(), "succeeded", time.perf_counter() - started,
                          status=status)
        return None

    async def failed(self, event: dict[str, Any], vendor: str, operation: str, state: CallState,
                     err: DeliveryError, seconds: float) -> float | None:
        d = self.deps
        now = d.clock()
        delay = d.policy.next_delay(err, state.attempts + 1, d.rng)
        new = state.failed(err.as_dict(), now, next_at=None if delay is None else now + delay)
        if delay is not None:
            await self.record(vendor, operation, new, "retrying", seconds)
            return new.next_at
        letter = dead_letter_record(
            dl_id=new_id(now), source=self.source, event=event, vendor=vendor, operation=operation,
            idempotency_key=idempotency_key(self.source, self.event_id, vendor, operation), state=new,
        )
        keys, args = d.dead_letters.put_args(letter, new)
        await self.record(vendor, operation, new, "dead", seconds,
                          write=lambda pipe: queue_script(pipe, d.dead_letters.put_script, keys, args))
        return None

    async def record(self, vendor: str, operation: str, state: CallState, outcome: str, seconds: float | None,
                     write: Any = None, status: int | None = None) -> None:
        """Write one call's new state (and counters) in the next shared pipeline, then log the canonical line."""
        d = self.deps
        field = f"{vendor}.{operation}"

        def queue(pipe: Any) -> int:
            if write is not None:
                return int(write(pipe))
            pipe.hset(self.calls_key, field, state.dumps())
            pipe.expire(self.calls_key, d.intake.event_ttl)
            return 2

        await d.batcher.submit(queue, counters=call_counters(d.keys.metrics, vendor, operation, outcome, seconds))
        error = (state.last_error or {}) if outcome in ("retrying", "dead") else {}
        log.info(
            "vendor_call", source=self.source, event_id=self.event_id, vendor=vendor, operation=operation,
            attempt=state.attempts, outcome=outcome, status=error.get("status", status),
            duration_ms=None if seconds is None else round(seconds * 1000, 2), error=error.get("message"),
        )
