"""The delivery job: one arq job per event, each vendor call on its own (SPEC section 5).

A run takes the event's lease, loads the event and its ledger in one round trip, and sends every call that is
due. Calls of different vendors, or of one vendor and different scopes, go concurrently; the calls of one
scope (a contact, a segment definition) at one vendor go one after another, each only after the gate of
rule 8 let it (store/order.py): not superseded by a later event, and no other event's call of the scope in
flight there. Each outcome is recorded as soon as the vendor answered. arq is asked to run the job again
when the earliest remaining call is due. Calls already final (succeeded, skipped, dead, superseded) are never
sent again.

A run never outlives its deadline (`Timing.run_seconds`, below arq's job_timeout, config/timing.py): it
starts a call only while a whole call still fits, and a run stuck on Redis is cut off and retried. The lease
is released only after every send of the run has ended.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from arq import Retry

from core.errors import DeliveryError, PermanentError
from core.idempotency import idempotency_key
from core.ordering import Ordered, ordered, version_ms
from core.routing import plan
from store.batch import queue_script
from store.calls import CallState, Ledger, Status
from store.dead_letters import dead_letter_record, new_id
from store.intake import owed_member
from store.ledger import RECORD_LUA, record_args
from store.metrics import call_counters
from store.order import GATE_LUA, CallOrder
from worker.deps import Deps

log = structlog.get_logger("sluice.worker")

LEASE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return redis.call('PTTL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return -1
"""
"""Take the event's lease (or find it is already this run's: a resent pipeline): -1; held by another run:
its TTL in ms."""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[3] == '1' and (redis.call('HGET', KEYS[3], '_gen') or '') == ARGV[4] then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
"""
"""KEYS: lease, owed set, ledger. ARGV: lease token, owed member, '1' when no call is owed any more, the
ledger's replay generation the run read (a replay since then owes again: the event stays owed)."""

REDIS_TROUBLE_DEFER = 1.0
HELD_POLL_FIRST, HELD_POLL_MAX = 0.005, 0.05
"""A call whose scope is held at its vendor looks again after 5 ms, then twice as long each time, up to 50 ms."""
LATE_SLACK = 0.1
"""A call that wakes this much later than its rate-limit slot (a paused or overloaded worker) books again."""


async def deliver(ctx: dict[str, Any], source: str, event_id: str) -> str:
    """arq entry point; returns a short summary for arq's log.

    arq drops a job that raises anything but Retry, or that outruns job_timeout, so neither may happen: when
    Redis itself fails (a restart, a fail-over) or stalls past the run's deadline, the whole run is tried
    again a moment later. Every call outcome already recorded stays recorded, and a call whose outcome could
    not be recorded is sent again with its key.
    """
    # arq runs each job in its own task, so this context is the job's own: every line it logs carries it
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), job_try=ctx.get("job_try"))
    deps: Deps = ctx["deps"]
    deadline = asyncio.timeout(deps.timing.run_seconds)
    try:
        async with deadline:
            return await EventDelivery(deps, source, event_id, ctx.get("job_id")).run()
    except Retry:
        raise
    except Exception as exc:
        problem = "run deadline passed" if deadline.expired() else f"{type(exc).__name__}: {exc}"
        log.warning("run_failed", source=source, event_id=event_id, error=problem)
        raise Retry(defer=REDIS_TROUBLE_DEFER) from exc


@dataclass(frozen=True, slots=True)
class Due:
    """A call to send in this run."""

    vendor: str
    operation: str
    state: CallState
    order: CallOrder | None  # None: rule 8 does not apply (no scope, or ordering off)

    @property
    def field(self) -> str:
        return f"{self.vendor}.{self.operation}"


@dataclass(frozen=True, slots=True)
class HeldOut:
    """A call that could not go: its scope stayed held by another event's call; due again at `due`."""

    due: float


class EventDelivery:
    def __init__(self, deps: Deps, source: str, event_id: str, job_id: str | None = None) -> None:
        self.deps = deps
        self.source = source
        self.event_id = event_id
        self.job_id = job_id or deps.keys.job_id(source, event_id)
        self.calls_key = deps.keys.calls(source, event_id)
        self.lease_key = deps.keys.lease(source, event_id)
        self.hold_token = owed_member(source, event_id)
        self.version = ""
        self._deadline = time.monotonic() + deps.timing.run_seconds

    async def run(self) -> str:
        d = self.deps
        token = secrets.token_hex(8)
        lease = [self.lease_key], [token, d.timing.lease_ms]

        def take_lease_and_load(pipe: Any) -> int:
            queue_script(pipe, d.scripts.lease, *lease)
            pipe.get(d.keys.event(self.source, self.event_id))
            pipe.hgetall(self.calls_key)
            pipe.pexpire(f"arq:job:{self.job_id}", d.intake.job_ttl_ms)  # arq never refreshes it
            return 4

        # in the shared pipeline: under load, the runs starting together share one round trip
        lease_ttl, body, raw_ledger, _ = await d.batcher.submit(take_lease_and_load)
        if lease_ttl >= 0:  # another worker is delivering this event right now (e.g. a replay overlapping)
            raise Retry(defer=max(int(lease_ttl), 100) / 1000)
        ledger = Ledger.parse(raw_ledger)
        try:
            if body is None:
                log.warning("event_missing", source=self.source, event_id=self.event_id)
                next_due = None
            else:
                next_due = await self.run_calls(orjson.loads(body), ledger)
        except BaseException:
            # no wait here: a run cut off at its deadline (Redis stalled) must end now; the lease lapses anyway
            self._in_background(self.release(token, ledger, owed=True))
            raise
        await self.release(token, ledger, owed=next_due is not None)
        if body is None:
            return "missing"
        if next_due is not None:
            raise Retry(defer=max(0.0, next_due - d.clock()))
        return "done"

    async def release(self, token: str, ledger: Ledger, *, owed: bool) -> None:
        """Release the lease; when no call is owed any more, the event leaves the owed set too."""
        d = self.deps
        keys = [self.lease_key, d.keys.owed, self.calls_key]
        args = [token, self.hold_token, "0" if owed else "1", ledger.generation or b""]
        await d.batcher.submit(lambda pipe: queue_script(pipe, d.scripts.release, keys, args))

    def _in_background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.deps.background.add(task)  # referenced, so it is not collected on its way
        task.add_done_callback(self.deps.background.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are the lease's TTL's job

    async def run_calls(self, event: dict[str, Any], ledger: Ledger) -> float | None:
        """Send every due call; the time the earliest unfinished call is due next, or None when all are final."""
        d = self.deps
        now = d.clock()
        version = ledger.version or f"{version_ms(event, now, d.settings.ingress.tolerance_seconds)}:0"
        self.version = f"{version}:{self.event_id}"
        waiting: list[float] = []
        groups: dict[tuple[str, str], list[Due]] = {}
        for vendor, operation in plan(event, d.settings.route_table):
            state = ledger.states.get(f"{vendor}.{operation}")
            if state is None and ledger.only_listed:
                continue  # a replay recreated an expired ledger: only the calls it names are owed
            state = state or CallState()
            if state.status.final:
                continue
            if state.next_at is not None and state.next_at > now:
                waiting.append(state.next_at)
                continue
            rule = ordered(event, vendor, operation) if d.settings.delivery.ordering else Ordered(None, ())
            order = CallOrder.of(d.keys, self.source, vendor, rule)
            group = (vendor, rule.scope) if rule.scope is not None else (vendor, operation)
            groups.setdefault(group, []).append(Due(vendor, operation, state, order))
        waiting.extend(await self.send_groups(event, list(groups.values())))
        return min(waiting) if waiting else None

    async def send_groups(self, event: dict[str, Any], groups: list[list[Due]]) -> list[float]:
        """Each group's calls in turn, the groups concurrently; when the unfinished ones are due again.

        A group whose bookkeeping fails (Redis) stops there; the others still finish before the error is
        raised, so that no send of this run is in flight once the run (and its lease) ends."""
        due_again: list[float] = []
        failures: list[BaseException] = []

        async def send_group(calls: list[Due]) -> None:
            for due in calls:
                if not self.time_for_a_call():  # the rest of the group goes in the next run, at once
                    due_again.append(self.deps.clock())
                    return
                try:
                    at = await self.call(event, due)
                except asyncio.CancelledError as exc:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise  # this run is being cancelled (deadline, shutdown)
                    failures.append(exc)
                    return
                except Exception as exc:
                    failures.append(exc)
                    return
                if isinstance(at, HeldOut):  # the rest of the group waits its turn too, in table order
                    due_again.append(at.due)
                    return
                if at is not None:
                    due_again.append(at)

        if len(groups) == 1:
            await send_group(groups[0])
        else:
            async with asyncio.TaskGroup() as tasks:
                for calls in groups:
                    tasks.create_task(send_group(calls))
        if failures:
            raise failures[0]
        return due_again

    def time_for_a_call(self, extra: float = 0.0) -> bool:
        """Whether one more call (taking at most `Timing.call_seconds`) still ends before the run's deadline."""
        return time.monotonic() + extra + self.deps.timing.call_seconds <= self._deadline

    async def call(self, event: dict[str, Any], due: Due) -> float | HeldOut | None:
        """One try of one call, its outcome recorded; when it is due again, or None when it is final
        (`HeldOut`: another event's call of its scope stayed in flight, nothing was tried)."""
        d = self.deps
        if not d.vendors.is_configured(due.vendor, due.operation):
            await self.record(due, CallState(status=Status.SKIPPED), "skipped", None)
            return None
        if due.order is not None:
            turn = await self.wait_for_turn(due)
            if turn is None:  # the scope stayed held as long as this run could wait
                return HeldOut(d.clock() + HELD_POLL_MAX)
            if turn:  # superseded by that event (a hold of this event's left by a cut-off run goes too)
                await self.record(due, due.state.superseded(turn), "superseded", None, release=True)
                return None
        deferred_to = await self.take_slot(due)
        if deferred_to is not None:  # the vendor's next free slot is far: wait for it without using a try
            await self.record(due, due.state.deferred(deferred_to), "rate_limited", None, release=True)
            return deferred_to
        key = idempotency_key(self.source, self.event_id, due.vendor, due.operation)
        started = time.perf_counter()
        try:
            status = await d.vendors.perform(due.vendor, due.operation, event, idempotency_key=key,
                                             timeout=d.settings.delivery.timeout_seconds)
        except DeliveryError as err:
            return await self.failed(event, due, err, time.perf_counter() - started)
        except Exception as exc:  # a bug must not become endless retries: dead-letter it with the reason
            bug = PermanentError(f"internal error in {due.field}: {type(exc).__name__}: {exc}")
            log.exception("call_crashed", source=self.source, event_id=self.event_id, vendor=due.vendor,
                          operation=due.operation)
            return await self.failed(event, due, bug, time.perf_counter() - started)
        await self.record(due, due.state.succeeded(), "succeeded", time.perf_counter() - started,
                          status=status, release=True, applied=True)
        return None

    async def wait_for_turn(self, due: Due) -> str | None:
        """Rule 8's gate for one call: "" when it may go (its scope's hold is now this event's), the id of
        the superseding event when it must not, None when the scope stayed held by another event's call for as
        long as this run can wait (no try is used either way)."""
        d = self.deps
        assert due.order is not None
        keys, args = due.order.gate_args(self.version, self.hold_token, d.timing.hold_ms,
                                         check=not due.state.forced)
        pause = HELD_POLL_FIRST
        while True:
            [(verdict, *detail)] = await d.batcher.submit(lambda pipe: queue_script(pipe, d.scripts.gate, keys, args))
            if verdict == b"go":
                return ""
            if verdict == b"superseded":
                return str(detail[0].decode())
            if not self.time_for_a_call(pause):
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, HELD_POLL_MAX)

    async def take_slot(self, due: Due) -> float | None:
        """Wait for the vendor's rate-limit slot (a near one); the time of a far one to defer to, or None to
        send now. A slot already booked (a deferred call) is used when it is due; a call that wakes well after
        its slot (the worker was paused) books again rather than joining a burst."""
        d = self.deps
        slot = due.state.slot
        while True:
            if slot is None:
                wait = await d.limiter.reserve(due.vendor)
                slot = d.clock() + wait
                if wait > d.limiter.max_wait:
                    return slot
            if slot > d.clock():
                await asyncio.sleep(slot - d.clock())
            if d.clock() - slot <= LATE_SLACK:
                return None
            slot = None

    async def failed(self, event: dict[str, Any], due: Due, err: DeliveryError, seconds: float) -> float | None:
        d = self.deps
        now = d.clock()
        delay = d.policy.next_delay(err, due.state.attempts + 1, d.rng)
        new = due.state.failed(err.as_dict(), now, next_at=None if delay is None else now + delay)
        if delay is not None:
            await self.record(due, new, "retrying", seconds, release=True)
            return new.next_at
        letter = dead_letter_record(
            dl_id=new_id(now), source=self.source, event=event, vendor=due.vendor, operation=due.operation,
            idempotency_key=idempotency_key(self.source, self.event_id, due.vendor, due.operation), state=new,
        )
        keys, args = d.dead_letters.put_args(letter, new, hold_token=self.hold_token)
        await self.record(due, new, "dead", seconds,
                          write=lambda pipe: queue_script(pipe, d.dead_letters.put_script, keys, args))
        return None

    async def record(self, due: Due, state: CallState, outcome: str, seconds: float | None, *,
                     status: int | None = None, release: bool = False, applied: bool = False,
                     write: Callable[[Any], int] | None = None) -> None:
        """Write one call's new state in the next shared pipeline (with its counters; `release`: the scope's
        hold too; `applied`: the subjects' versions raised), then log the canonical line."""
        d = self.deps
        if write is None:
            keys, args = record_args(self.calls_key, due.field, state.dumps(), d.intake.event_ttl, due.order,
                                     token=self.hold_token if release else "",
                                     version=self.version if applied else "")
            write = _script_writer(d.scripts.record, keys, args)
        counters = call_counters(d.keys.metrics, due.vendor, due.operation, outcome, seconds)
        await d.batcher.submit(write, counters=counters)
        error = (state.last_error or {}) if outcome in ("retrying", "dead") else {}
        fields: dict[str, Any] = {}
        if state.superseded_by is not None:
            fields["superseded_by"] = state.superseded_by
        log.info(
            "vendor_call", source=self.source, event_id=self.event_id, vendor=due.vendor,
            operation=due.operation, attempt=state.attempts, outcome=outcome, status=error.get("status", status),
            duration_ms=None if seconds is None else round(seconds * 1000, 2), error=error.get("message"),
            **fields,
        )


def _script_writer(script: Any, keys: list[str], args: list[Any]) -> Callable[[Any], int]:
    return lambda pipe: queue_script(pipe, script, keys, args)


@dataclass(frozen=True, slots=True)
class DeliveryScripts:
    """The delivery job's scripts, registered once per worker."""

    lease: Any
    release: Any
    gate: Any
    record: Any

    @classmethod
    def register(cls, redis: Any) -> DeliveryScripts:
        return cls(lease=redis.register_script(LEASE_LUA), release=redis.register_script(RELEASE_LUA),
                   gate=redis.register_script(GATE_LUA), record=redis.register_script(RECORD_LUA))
