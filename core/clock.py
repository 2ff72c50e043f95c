"""Time as a dependency: everything that reads the time takes a Clock, so tests can pin it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns Unix time in seconds, like time.time."""

system_clock: Clock = time.time


class FrozenClock:
    """A clock for tests: stands still until moved."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 in UTC with millisecond precision, e.g. 2026-11-24T10:00:00.000Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> float:
    """RFC 3339 (with an offset or Z) to Unix seconds; ValueError when it is not one."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("an RFC 3339 time needs an offset or Z")
    return dt.timestamp()
