"""What the sandbox records besides vendor data: every request it received (`RecordedRequest`) and the faults
queued for the next ones (`Fault`). The state keeps them; the app writes and applies them."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from sandbox.common import php_parse

VENDORS = ("segmetrics", "salesmachine", "personaclick", "infinity")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Fault:
    """What the next `times` matching requests of `vendor` get instead of the emulator's answer:
    - `drop=True`: the connection is closed without a response, before the emulator sees the request
      (after `delay`, when given); `drop="after"`: the emulator does the work, then the connection is
      closed without the response (the vendor acted, the client cannot know);
    - `delay` alone: the request waits that many seconds (or until the client gives up), then is served
      normally;
    - otherwise: `status` with the vendor's error body (or `body`), and `Retry-After: <retry_after>` when
      given (seconds or an HTTP-date).
    A latency fault (`delay` alone) and an outcome fault (a status or a drop) can apply to the same request:
    e.g. `inject("*", delay=0.01, times=10**6)` plus `inject("segmetrics", 503, times=5)`.
    `probability` below 1 makes the fault apply to each matching request only with that chance (drawn from
    a RNG seeded with `seed`, so a run is repeatable); `times` counts the requests it applied to, e.g.
    `inject("segmetrics", 503, times=10**6, probability=0.3)` fails about 30% of SegMetrics calls."""

    vendor: str
    status: int = 503
    times: int = 1
    path_contains: str | None = None
    method: str | None = None
    retry_after: str | None = None
    delay: float | None = None
    drop: bool | str = False
    body: str | None = None
    content_type: str | None = None
    probability: float = 1.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def public(self) -> dict[str, Any]:
        """The fault as JSON-able fields (the control API's answer)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def draw(self) -> bool:
        """Whether the fault applies to this (matching) request."""
        return self.probability >= 1 or self._rng.random() < self.probability

    @property
    def is_latency(self) -> bool:
        """A delay after which the request is served normally."""
        return bool(self.delay) and not self.drop

    def matches(self, vendor: str, method: str, path: str) -> bool:
        return (
            self.times > 0
            and self.vendor in (vendor, "*")
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
        )


@dataclass
class RecordedRequest:
    vendor: str
    method: str
    path: str
    query: str
    body: str
    idempotency_key: str | None
    headers: dict[str, str]
    status: int | None = None  # None: no response was sent (dropped, or the client gave up first)
    fault: str | None = None  # "status", "drop", "drop-after" or "delay" when a fault was applied

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def form(self) -> list[tuple[str, str]]:
        """The form body as ordered pairs."""
        return parse_qsl(self.body, keep_blank_values=True)

    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def params(self) -> dict[str, Any]:
        """Query and form together, PHP arrays unfolded (what Infinity reads)."""
        form = self.form() if "x-www-form-urlencoded" in self.headers.get("content-type", "") else []
        return php_parse(self.query_pairs() + form)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
