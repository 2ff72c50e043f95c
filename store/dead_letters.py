"""The dead-letter store (SPEC section 5 rule 4, section 7): calls that could not be delivered.

Layout: `<ns>:dl:<id>` holds the dead letter's JSON; `<ns>:dl-index` orders ids by last_failed_at (ms);
`<ns>:dl-count` counts them per vendor. Writing a dead letter and marking its call `dead` in the ledger is one
Lua script, so a crash can never leave one without the other. Replaying puts the call back to `pending` with a
fresh try count and enqueues a delivery job in the same script; the idempotency key stays the same.

Dead letters never expire, so while one exists it pins what its replay needs: the event's ledger and body
and the order hash of the call's scope lose their TTL (`_dl` counts the letters), and get it back when the
last letter is replayed or purged. A replay, however late, sends only the replayed call; rule 8 still
applies to it (a stale replay ends `superseded`) unless it is forced.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from core.clock import Clock, parse_rfc3339, rfc3339, system_clock
from core.ordering import ordered, version_ms
from store.calls import CallState
from store.intake import Intake, job_bytes, owed_member
from store.keys import Keys
from store.order import UNPIN_LUA, CallOrder

PUT_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('SET', KEYS[2], ARGV[3], 'NX') then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
  redis.call('HINCRBY', KEYS[1], '_dl', 1)
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[5])
  if ARGV[8] == '1' then
    redis.call('HINCRBY', KEYS[6], '_dl', 1)
    redis.call('PERSIST', KEYS[6])
  end
end
if ARGV[7] ~= '' and redis.call('GET', KEYS[7]) == ARGV[7] then redis.call('DEL', KEYS[7]) end
return 1
"""
"""KEYS: ledger, letter, index, counts, event body, the scope's order hash, the call's hold. ARGV: call field,
state, letter JSON, score (ms), letter id, vendor, hold token ('' = none), '1' when the call has a scope. The letter is written once (NX), so running the script twice
counts and pins it once."""

DELETE_LUA = UNPIN_LUA + """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if unpin(KEYS[4], ARGV[3]) then redis.call('EXPIRE', KEYS[5], ARGV[3]) end
if ARGV[4] == '1' then unpin(KEYS[6], ARGV[3]) end
return 1
"""
"""KEYS: letter, index, counts, ledger, event body, order hash. ARGV: letter id, vendor, event TTL, '1' when
the call has a scope."""

REPLAY_LUA = UNPIN_LUA + """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('HSET', KEYS[4], '_only', '1', '_v', ARGV[12])
elseif not redis.call('HGET', KEYS[4], '_v') then
  redis.call('HSET', KEYS[4], '_v', ARGV[12])
end
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
redis.call('HINCRBY', KEYS[4], '_gen', 1)
if redis.call('EXISTS', KEYS[5]) == 0 then redis.call('SET', KEYS[5], ARGV[5]) end
if unpin(KEYS[4], ARGV[6]) then redis.call('EXPIRE', KEYS[5], ARGV[6]) end
if ARGV[13] == '1' then unpin(KEYS[9], ARGV[6]) end
redis.call('PSETEX', KEYS[6], ARGV[8], ARGV[7])
redis.call('ZADD', KEYS[7], ARGV[10], ARGV[9])
redis.call('ZADD', KEYS[8], ARGV[10], ARGV[11])
return 1
"""
"""KEYS: letter, index, counts, ledger, event body, arq job, queue, owed set, order hash. ARGV: letter id,
vendor, call field, the call's fresh state, event JSON, event TTL, job, job TTL ms, job id, now ms, owed
member, the event's version (used only when the ledger is gone), '1' when the call has a scope.

An expired ledger (a letter older than its event's TTL, written before letters pinned it) is recreated with
`_only`: then the replayed call is the only one owed, and the event's other calls are not sent again."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Dead-letter filters of the admin API and CLI; `since`/`until` compare with last_failed_at."""

    vendor: str | None = None
    type: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Filter:
        """From query parameters or a JSON body; ValueError naming the bad field."""
        times: dict[str, float | None] = {}
        for name in ("since", "until"):
            raw = params.get(name)
            if raw in (None, ""):
                times[name] = None
                continue
            try:
                times[name] = parse_rfc3339(str(raw))
            except ValueError:
                raise ValueError(f"{name}: not an RFC 3339 time with an offset") from None
        text = {}
        for name in ("vendor", "type", "source"):
            raw = params.get(name)
            if raw not in (None, "") and not isinstance(raw, str):
                raise ValueError(f"{name}: must be a string")
            text[name] = raw or None
        return cls(**text, **times)

    def matches(self, letter: Mapping[str, Any]) -> bool:
        return (
            (self.vendor is None or letter.get("vendor") == self.vendor)
            and (self.type is None or letter.get("event_type") == self.type)
            and (self.source is None or letter.get("source") == self.source)
        )


def new_id(now: float) -> str:
    """Time-ordered and unique: 12 hex digits of milliseconds, then 8 random hex digits."""
    return f"dl_{int(now * 1000):012x}{secrets.token_hex(4)}"


def dead_letter_record(
    *,
    dl_id: str,
    source: str,
    event: Mapping[str, Any],
    vendor: str,
    operation: str,
    idempotency_key: str,
    state: CallState,
) -> dict[str, Any]:
    """The dead letter of SPEC rule 4, from the call's final state."""
    assert state.first_failed_at is not None and state.last_failed_at is not None
    return {
        "id": dl_id,
        "source": source,
        "event_id": event["id"],
        "event_type": event["type"],
        "vendor": vendor,
        "operation": operation,
        "idempotency_key": idempotency_key,
        "attempts": state.attempts,
        "first_failed_at": rfc3339(state.first_failed_at),
        "last_failed_at": rfc3339(state.last_failed_at),
        "error": state.last_error,
        "event": dict(event),
    }


class DeadLetterStore:
    def __init__(self, redis: Redis, keys: Keys, intake: Intake, clock: Clock = system_clock) -> None:
        self.redis = redis
        self.keys = keys
        self.intake = intake
        self.clock = clock
        self.put_script = redis.register_script(PUT_LUA)
        self._delete = redis.register_script(DELETE_LUA)
        self._replay = redis.register_script(REPLAY_LUA)

    def call_order(self, letter: Mapping[str, Any]) -> CallOrder | None:
        """Where rule 8 is kept for the letter's call (None: the call has no scope)."""
        return CallOrder.of(self.keys, letter["source"], letter["vendor"],
                            ordered(letter["event"], letter["vendor"], letter["operation"]))

    def put_args(self, letter: Mapping[str, Any], state: CallState, *, hold_token: str = ""
                 ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the atomic write (call marked dead + dead letter stored + the event pinned + the
        call's hold released when `hold_token` names it), for batching."""
        source, event_id = letter["source"], letter["event_id"]
        assert state.last_failed_at is not None
        order = self.call_order(letter)
        ledger = self.keys.calls(source, event_id)
        keys = [ledger, self.keys.dead_letter(letter["id"]), self.keys.dead_index, self.keys.dead_counts,
                self.keys.event(source, event_id), order.order_key if order else ledger,
                order.hold_key if order else ledger]
        args = [f"{letter['vendor']}.{letter['operation']}", state.dumps(), orjson.dumps(letter),
                int(state.last_failed_at * 1000), letter["id"], letter["vendor"], hold_token if order else "",
                "1" if order else "0"]
        return keys, args

    async def put(self, letter: Mapping[str, Any], state: CallState) -> None:
        keys, args = self.put_args(letter, state)
        await self.put_script(keys=keys, args=args)

    async def get(self, dl_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.dead_letter(dl_id))
        return orjson.loads(raw) if raw else None

    async def delete(self, dl_id: str) -> bool:
        letter = await self.get(dl_id)
        return letter is not None and await self.delete_batch([letter]) == 1

    async def delete_batch(self, letters: Sequence[Mapping[str, Any]]) -> int:
        """Delete several letters in one round trip; how many were still there to delete."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for letter in letters:
                keys, args = self.delete_args(letter)
                await self._delete(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return sum(1 for r in results if r)

    def delete_args(self, letter: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        source, event_id = letter["source"], letter["event_id"]
        order = self.call_order(letter)
        ledger = self.keys.calls(source, event_id)
        keys = [self.keys.dead_letter(letter["id"]), self.keys.dead_index, self.keys.dead_counts, ledger,
                self.keys.event(source, event_id), order.order_key if order else ledger]
        return keys, [letter["id"], letter["vendor"], self.intake.event_ttl, "1" if order else "0"]

    async def counts(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.dead_counts)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def iterate(self, flt: Filter | None = None, cursor: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Matching dead letters, oldest first, starting after `cursor`."""
        async for _, letter in self._scan(flt or Filter(), cursor):
            yield letter

    async def _scan(self, flt: Filter, cursor: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(cursor of the letter, letter) for each match, in index order."""
        low: float | str = "-inf" if flt.since is None else int(flt.since * 1000)
        high: float | str = "+inf" if flt.until is None else int(flt.until * 1000)
        after: tuple[int, str] | None = None
        if cursor:
            after = parse_cursor(cursor)
            low = after[0] if low == "-inf" else max(int(low), after[0])
        offset = 0
        while True:
            page = await self.redis.zrangebyscore(self.keys.dead_index, low, high, start=offset, num=500,
                                                  withscores=True)
            if not page:
                return
            offset += len(page)
            entries = [(int(s), m.decode()) for m, s in page]
            entries = [e for e in entries if after is None or e > after]
            if not entries:
                continue
            raws = await self.redis.mget([self.keys.dead_letter(i) for _, i in entries])
            for (score, dl_id), raw in zip(entries, raws, strict=True):
                if raw:
                    letter = orjson.loads(raw)
                    if flt.matches(letter):
                        yield f"{score}:{dl_id}", letter

    async def page(self, flt: Filter | None = None, *, limit: int = 100, cursor: str | None = None
                   ) -> tuple[list[dict[str, Any]], str | None]:
        """One page: up to `limit` letters and the cursor of the next page (None at the end)."""
        items: list[dict[str, Any]] = []
        last = ""
        async for position, letter in self._scan(flt or Filter(), cursor):
            if len(items) == limit:
                return items, last
            items.append(letter)
            last = position
        return items, None

    async def replay(self, dl_id: str, *, force: bool = False) -> bool:
        """Back to the queue with a fresh try count and the same idempotency key; False if unknown. Rule 8
        still applies when the call is sent (a stale replay ends `superseded`) unless `force`."""
        letter = await self.get(dl_id)
        if letter is None:
            return False
        keys, args = self.replay_args(letter, force=force)
        return bool(await self._replay(keys=keys, args=args))

    def replay_args(self, letter: Mapping[str, Any], *, force: bool = False) -> tuple[list[str], list[Any]]:
        source, event_id, dl_id = letter["source"], letter["event_id"], letter["id"]
        now_ms = int(self.clock() * 1000)
        job_id = self.keys.job_id(source, event_id, f"replay-{dl_id}")
        order = self.call_order(letter)
        ledger = self.keys.calls(source, event_id)
        keys = [self.keys.dead_letter(dl_id), self.keys.dead_index, self.keys.dead_counts, ledger,
                self.keys.event(source, event_id), f"arq:job:{job_id}", self.keys.queue, self.keys.owed,
                order.order_key if order else ledger]
        # only for a ledger that expired: its acceptance number is gone, the letter's own time stands in
        version = f"{version_ms(letter['event'], parse_rfc3339(letter['first_failed_at']), 0)}:0"
        args = [dl_id, letter["vendor"], f"{letter['vendor']}.{letter['operation']}",
                CallState(forced=force).dumps(), orjson.dumps(letter["event"]), self.intake.event_ttl,
                job_bytes(source, event_id, now_ms), self.intake.job_ttl_ms, job_id, now_ms,
                owed_member(source, event_id), version, "1" if order else "0"]
        return keys, args

    async def replay_batch(self, letters: Sequence[Mapping[str, Any]], *, force: bool = False) -> int:
        """Replay several letters in one round trip; how many were still there to replay."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for letter in letters:
                keys, args = self.replay_args(letter, force=force)
                await self._replay(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return sum(1 for r in results if r)


def parse_cursor(cursor: str) -> tuple[int, str]:
    score, sep, dl_id = cursor.partition(":")
    if not sep or not score.isdigit() or not dl_id:
        raise ValueError("cursor: not a cursor returned by this API")
    return int(score), dl_id
