"""What the ingress's lifespan hands to every request (`request.state.ingress`), and the seams around it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis

from config.settings import Settings
from core.clock import Clock
from core.signatures import Verifier
from ingress.deadlines import BodyDeadlines
from store.keys import Keys


class Acceptor(Protocol):
    """Stores a verified event and enqueues its delivery; False when (source, id) was accepted before.

    `store.intake.Intake` is the plain one; a batching one (one pipeline per event-loop turn) fits the same slot.
    Redis errors propagate: the ingress answers 503 for them.
    """

    async def accept(self, source: str, event: Mapping[str, Any], body: bytes) -> bool: ...


@dataclass(slots=True)
class WebhookResult:
    """The canonical record of one webhook request: logged, and given to every observer (e.g. metrics)."""

    source: str
    status: int = 0
    outcome: str = ""
    event_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    duration_ms: float = 0.0


Observer = Callable[[WebhookResult], None]


@dataclass(slots=True)
class IngressState:
    settings: Settings
    keys: Keys
    redis: Redis
    intake: Acceptor
    verifiers: Mapping[str, Verifier]
    clock: Clock
    log: Any
    observers: Sequence[Observer] = field(default_factory=tuple)
    body_deadlines: BodyDeadlines = field(init=False)
    """The body-read deadline (`[ingress] body_timeout_seconds`), built from the settings."""

    def __post_init__(self) -> None:
        self.body_deadlines = BodyDeadlines(self.settings.ingress.body_timeout_seconds)

    @property
    def max_body_bytes(self) -> int:
        return self.settings.ingress.max_body_bytes
