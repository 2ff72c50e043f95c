"""The retry decision: table-driven, no clock, no Redis."""

import random

import pytest

from core.errors import PermanentError, TransientError
from worker.retry import RetryPolicy

POLICY = RetryPolicy(schedule=(5, 30, 120), jitter=0.2)


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 5, 6), (2, 30, 36), (3, 120, 144)],
)
def test_transient_waits_follow_the_schedule_with_jitter(attempts: int, low: float, high: float) -> None:
    """The n-th failed try waits the n-th step, stretched by at most the jitter."""
    rng = random.Random(7)
    delays = [POLICY.next_delay(TransientError("503", status=503), attempts, rng) for _ in range(200)]
    assert all(d is not None and low <= d <= high for d in delays)
    assert len({round(d, 6) for d in delays if d is not None}) > 100  # actually jittered


def test_last_try_is_dead() -> None:
    """A call tried len(schedule) + 1 times is not tried again."""
    assert POLICY.max_tries == 4
    assert POLICY.next_delay(TransientError("503"), 4, random.Random(1)) is None


def test_permanent_is_dead_at_once() -> None:
    assert POLICY.next_delay(PermanentError("400", status=400), 1, random.Random(1)) is None


@pytest.mark.parametrize(("retry_after", "expected_min"), [(60, 60), (10_000, 3600), (0.5, 5)])
def test_retry_after_is_honoured_up_to_its_cap(retry_after: float, expected_min: float) -> None:
    """Retry-After lengthens a wait (up to max_retry_after, past the schedule's longest step) and never
    shortens it."""
    delay = POLICY.next_delay(TransientError("429", status=429, retry_after=retry_after), 1, random.Random(3))
    assert delay is not None
    assert expected_min <= delay <= max(expected_min, 6)


def test_zero_jitter_is_exact() -> None:
    policy = RetryPolicy(schedule=(0.05, 0.1, 0.2), jitter=0)
    assert [policy.next_delay(TransientError("x"), n, random.Random()) for n in (1, 2, 3, 4)] == [0.05, 0.1, 0.2, None]
