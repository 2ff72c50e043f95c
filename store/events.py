"""Reading an accepted event back with the state of each of its calls (admin API and CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

from core.routing import plan
from store.calls import CallState, Ledger
from store.keys import Keys


async def event_view(
    redis: Redis, keys: Keys, routes: Mapping[str, tuple[str, ...]], source: str, event_id: str
) -> dict[str, Any] | None:
    """`{"event": ..., "calls": [...]}` of SPEC section 7, or None when the event is unknown (or expired)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.event(source, event_id))
        pipe.hgetall(keys.calls(source, event_id))
        body, raw_states = await pipe.execute()
    if body is None:
        return None
    event = orjson.loads(body)
    ledger = Ledger.parse(raw_states)
    states = ledger.states
    names = [f"{vendor}.{operation}" for vendor, operation in plan(event, routes)]
    if ledger.only_listed:  # recreated by a replay: the calls it does not list are not owed, nor known
        names = [name for name in names if name in states]
    names += [name for name in states if name not in names]  # calls of an earlier routing table
    calls = []
    for name in names:
        vendor, _, operation = name.partition(".")
        calls.append({"vendor": vendor, "operation": operation, **states.get(name, CallState()).view()})
    return {"event": event, "calls": calls}
