"""The ledger: the state of every vendor call of an event, one Redis hash per event.

Field `vendor.operation` holds a JSON call state. A call marked `succeeded` is never sent again for that
event, whatever happens later (duplicate webhook, job retry, replay, worker crash after the write).
Fields starting with `_` are the event's own: `_v` its version (SPEC rule 8, written at intake), `_dl` how
many dead letters of it exist (while any does, the ledger and the event body do not expire), `_gen` bumped by
every replay, `_only` set when a replay had to recreate an expired ledger: then only the calls it names are
owed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from typing import Any

import orjson


class Status(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    RETRYING = "retrying"
    DEAD = "dead"
    SUPERSEDED = "superseded"

    @property
    def final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.SKIPPED, Status.DEAD, Status.SUPERSEDED)


@dataclass(frozen=True, slots=True)
class CallState:
    status: Status = Status.PENDING
    attempts: int = 0
    last_error: dict[str, Any] | None = None
    first_failed_at: float | None = None
    last_failed_at: float | None = None
    next_at: float | None = None
    slot: float | None = None  # a rate-limit slot booked for this call's next try
    forced: bool = False  # replayed with `force`: sent even if a later event superseded it
    superseded_by: str | None = None  # the id of the event whose state the vendor has instead
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def loads(cls, raw: bytes | str | None) -> CallState:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        data["status"] = Status(data.get("status", "pending"))
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__ and k != "extra"}
        return cls(**known, extra=data)

    def dumps(self) -> bytes:
        # not dataclasses.asdict: it deep-copies every value first, a third of this call's cost
        data = {name: getattr(self, name) for name in _STORED_FIELDS}
        data.update(self.extra)
        return orjson.dumps(data)

    def succeeded(self) -> CallState:
        return replace(self, status=Status.SUCCEEDED, attempts=self.attempts + 1, next_at=None, slot=None)

    def failed(self, error: dict[str, Any], now: float, *, next_at: float | None) -> CallState:
        return replace(
            self,
            status=Status.RETRYING if next_at is not None else Status.DEAD,
            attempts=self.attempts + 1,
            last_error=error,
            first_failed_at=self.first_failed_at if self.first_failed_at is not None else now,
            last_failed_at=now,
            next_at=next_at,
            slot=None,
        )

    def superseded(self, by: str) -> CallState:
        return replace(self, status=Status.SUPERSEDED, superseded_by=by, next_at=None, slot=None)

    def deferred(self, slot: float) -> CallState:
        """Held back by the rate limit until its booked slot, without using a try."""
        status = Status.RETRYING if self.attempts else Status.PENDING
        return replace(self, status=status, next_at=slot, slot=slot)

    def view(self) -> dict[str, Any]:
        """The per-call object of the admin event view (SPEC section 7)."""
        view: dict[str, Any] = {"status": self.status.value, "attempts": self.attempts, "last_error": self.last_error}
        if self.status is Status.SUPERSEDED:
            view["superseded_by"] = self.superseded_by
        return view


@dataclass(frozen=True, slots=True)
class Ledger:
    """One event's ledger as read from Redis: its calls' states and its own fields."""

    states: dict[str, CallState]
    version: str | None = None  # "<ms>:<seq>", SPEC rule 8
    generation: bytes | None = None
    only_listed: bool = False

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> Ledger:
        states, meta = {}, {}
        for key, value in raw.items():
            name = key.decode()
            if name.startswith("_"):
                meta[name] = value
            else:
                states[name] = CallState.loads(value)
        version = meta.get("_v")
        return cls(states, version.decode() if version else None, meta.get("_gen"), "_only" in meta)


_STORED_FIELDS = tuple(f.name for f in fields(CallState) if f.name != "extra")
