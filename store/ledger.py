"""Writing one call's outcome, as one script in the worker's shared pipeline.

The call's state goes into the event's ledger (store/calls.py), which keeps its TTL unless a dead letter of
the event pins it. With rule 8 on, a success also raises the versions of the subjects the call wrote (never
lowers them), and the outcome releases the call's hold on its scope, all atomically: the next call of the
contact can go only once this one's outcome is known. The script is safe to run twice (a pipeline resent
after a dropped connection): every step sets a value, raises to a maximum, or deletes what the call holds.
"""

from __future__ import annotations

from typing import Any

from store.order import LATER_LUA, CallOrder

RECORD_LUA = LATER_LUA + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HEXISTS', KEYS[1], '_dl') == 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if ARGV[5] ~= '' then
  for i = 6, #ARGV do
    if later(ARGV[5], redis.call('HGET', KEYS[2], ARGV[i])) then redis.call('HSET', KEYS[2], ARGV[i], ARGV[5]) end
  end
  if redis.call('HEXISTS', KEYS[2], '_dl') == 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1
"""
"""KEYS: ledger, the scope's order hash, the hold. ARGV: call field, state JSON, TTL (s), the hold's token
('' = holds nothing), the version to raise the subjects to ('' = none), then the subjects."""


def record_args(ledger_key: str, field: str, state: bytes, ttl: int, order: CallOrder | None, *,
                token: str = "", version: str = "") -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of RECORD_LUA. `token`: release the hold it names; `version`: raise the subjects to it."""
    if order is None:
        return [ledger_key, ledger_key, ledger_key], [field, state, ttl, "", ""]
    return ([ledger_key, order.order_key, order.hold_key],
            [field, state, ttl, token, version, *(order.subjects if version else ())])
