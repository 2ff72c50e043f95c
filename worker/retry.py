"""The one place that decides: try a failed call again (and when), or dead-letter it (SPEC section 5 rule 3)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from config.settings import DeliverySettings
from core.errors import DeliveryError, TransientError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    schedule: tuple[float, ...]
    jitter: float = 0.2
    max_retry_after: float = 3600

    @classmethod
    def from_settings(cls, delivery: DeliverySettings) -> RetryPolicy:
        return cls(schedule=tuple(delivery.schedule_seconds), jitter=delivery.jitter,
                   max_retry_after=delivery.max_retry_after_seconds)

    @property
    def max_tries(self) -> int:
        return len(self.schedule) + 1

    def next_delay(self, error: DeliveryError, attempts: int, rng: random.Random) -> float | None:
        """Seconds to wait before the next try, or None: dead-letter now.

        `attempts` counts the tries made so far, the failed one included. Permanent errors and a used-up
        schedule give None. A transient wait is the schedule's step stretched by up to `jitter`, and never
        shorter than the vendor's Retry-After up to `max_retry_after`, even where that is longer than the step
        (SPEC section 5 rule 3); a longer Retry-After is cut to `max_retry_after`."""
        if not isinstance(error, TransientError) or attempts >= self.max_tries:
            return None
        delay = self.schedule[attempts - 1] * (1 + rng.uniform(0, self.jitter))
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.max_retry_after))
        return delay
