"""SPEC section 5 rule 8 in Redis: which call may go now, and what the vendor already has.

Per scope (a contact, or a segment definition) one hash, `Keys.order`: for every `vendor|subject` a call
wrote, the version of the latest event whose call succeeded there; `fence`, the version of the contact's
latest `contact.delete` (set at intake, in the same script that accepts the event). Versions are
`<ms>:<seq>:<event id>` (core/ordering.py). Per vendor and scope one hold, `Keys.hold`, a key with a TTL
naming the event whose call is in flight there.

Before a call is sent, `GATE_LUA` (in the worker's shared pipeline) decides in one step: superseded (the fence,
or a subject, has a later version: the id of that event is returned), held (another event's call of the scope
is in flight at the vendor: wait a moment, no try used), or go (the hold is taken). The write of the call's
outcome (`store/ledger.py`) raises the subjects' versions on success and releases the hold, atomically.
The order hash lives as long as the events' ledgers (`event_ttl`, at least `dedupe_seconds` + a day), and
as long as any dead letter of the scope exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.ordering import Ordered
from store.keys import Keys

LATER_LUA = """
local function later(a, b)
  if not b then return true end
  local am, as = string.match(a, '^(%d+):(%d+)')
  local bm, bs = string.match(b, '^(%d+):(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local function event_of(v) return string.match(v, '^%d+:%d+:(.*)$') end
"""
"""`later(a, b)`: whether version `a` is later than version `b` (false = none yet); `event_of(v)`: its event."""

UNPIN_LUA = """
local function unpin(key, ttl)
  if redis.call('HINCRBY', key, '_dl', -1) > 0 then return false end
  redis.call('HDEL', key, '_dl')
  redis.call('EXPIRE', key, ttl)
  return true
end
"""
"""`unpin(key, ttl)`: one dead letter fewer holds the hash; the last one gives it its TTL back (true)."""

GATE_LUA = LATER_LUA + """
if ARGV[4] == '1' then
  local fence = redis.call('HGET', KEYS[1], 'fence')
  if fence and later(fence, ARGV[1]) then return {'superseded', event_of(fence)} end
  for i = 5, #ARGV do
    local v = redis.call('HGET', KEYS[1], ARGV[i])
    if v and later(v, ARGV[1]) then return {'superseded', event_of(v)} end
  end
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {'held', redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {'go'}
"""
"""KEYS: the scope's order hash, the hold. ARGV: the call's version, the hold's token (its event), the hold's
TTL in ms, '1' to check the fence and the subjects ('0' for a forced replay), then the subjects."""


@dataclass(frozen=True, slots=True)
class CallOrder:
    """Where rule 8 is kept for one call: its scope's order hash and hold, the subjects it writes."""

    order_key: str
    hold_key: str
    subjects: tuple[str, ...]

    @classmethod
    def of(cls, keys: Keys, source: str, vendor: str, ordered: Ordered) -> CallOrder | None:
        if ordered.scope is None:
            return None
        return cls(keys.order(source, ordered.scope), keys.hold(vendor, source, ordered.scope), ordered.subjects)

    def gate_args(self, version: str, token: str, hold_ms: int, *, check: bool) -> tuple[list[str], list[Any]]:
        return [self.order_key, self.hold_key], [version, token, hold_ms, "1" if check else "0", *self.subjects]
