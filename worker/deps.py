"""What a worker process holds for its whole life, built in arq's on_startup and passed to every job."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from redis.asyncio import Redis

from config.settings import Settings
from config.timing import Timing
from core.clock import Clock
from store.batch import PipelineBatcher
from store.dead_letters import DeadLetterStore
from store.intake import Intake
from store.keys import Keys
from worker.ratelimit import RateLimiter
from worker.retry import RetryPolicy

if TYPE_CHECKING:
    from worker.deliver import DeliveryScripts


class VendorPort(Protocol):
    """What delivery needs from handlers.registry.Vendors."""

    def is_configured(self, vendor: str, operation: str) -> bool: ...

    async def perform(
        self, vendor: str, operation: str, event: Any, *, idempotency_key: str, timeout: float
    ) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    keys: Keys
    redis: Redis
    http: httpx.AsyncBaseTransport | None
    vendors: VendorPort
    intake: Intake
    dead_letters: DeadLetterStore
    limiter: RateLimiter
    batcher: PipelineBatcher
    policy: RetryPolicy
    clock: Clock
    rng: random.Random
    timing: Timing
    scripts: DeliveryScripts
    owns_redis: bool = False
    background: set[asyncio.Future[Any]] = field(default_factory=set)
    """Writes left to finish after their run ended (the lease release of a run cut off at its deadline)."""

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.owns_redis:
            await self.redis.aclose()
