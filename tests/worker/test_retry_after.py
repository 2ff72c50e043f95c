"""A vendor's Retry-After is honoured up to `[delivery] max_retry_after_seconds`, even where it is longer than
the schedule's step (SPEC section 2, section 5 rule 3): the setting, the policy, and the wait a real run
writes to the ledger after a 429 from the sandbox over HTTP, with one frozen clock for the worker and the
vendor clients (so an HTTP-date is read against the same "now")."""

from __future__ import annotations

import email.utils
import random

import pytest
from arq import Retry

from cli.samples import sample_event
from config.settings import DeliverySettings, settings_from_mapping
from core.clock import FrozenClock
from core.errors import ConfigError, TransientError
from handlers.registry import Vendors, build_http_client
from store.calls import CallState, Status
from tests.worker.conftest import Events
from worker.app import build_deps
from worker.deliver import EventDelivery
from worker.retry import RetryPolicy

T0 = 1_795_000_000.0
SHORT = [1, 5, 30]


def test_the_default_cap_is_an_hour() -> None:
    assert DeliverySettings().max_retry_after_seconds == 3600
    assert RetryPolicy.from_settings(DeliverySettings(max_retry_after_seconds=90)).max_retry_after == 90


@pytest.mark.parametrize("value", [0, -5, "soon"])
def test_a_bad_cap_names_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"delivery": {"max_retry_after_seconds": value}}, {})
    assert raised.value.key == "delivery.max_retry_after_seconds"


@pytest.mark.parametrize(
    ("retry_after", "cap", "expected"),
    [(300, 3600, 300), (3600, 3600, 3600), (7200, 3600, 3600), (300, 120, 120), (0.5, 3600, None)],
)
def test_the_policy_waits_at_least_retry_after_up_to_the_cap(retry_after: float, cap: float,
                                                            expected: float | None) -> None:
    """Far beyond the schedule's longest step (30 s), up to the cap; a shorter Retry-After leaves the step."""
    policy = RetryPolicy(schedule=tuple(SHORT), jitter=0.2, max_retry_after=cap)
    for attempts in (1, 2, 3):
        delay = policy.next_delay(TransientError("429", status=429, retry_after=retry_after), attempts,
                                  random.Random(attempts))
        assert delay is not None
        step = SHORT[attempts - 1]
        if expected is None:
            assert step <= delay <= step * 1.2
        else:
            assert delay == expected  # every step here, jittered, is shorter than the expected wait


async def _one_run(make_settings, sandbox, redis_client, retry_after: str | int, **delivery: object):
    """Accept a segment.delete, let Infinity answer its lookup 429 with `retry_after`, run the delivery once
    at T0; the Retry arq was given and the call's state in the ledger."""
    settings = make_settings(vendors=sandbox.vendor_tables(),
                             delivery={"schedule_seconds": SHORT, "timeout_seconds": 2, **delivery})
    clock = FrozenClock(T0)
    http = build_http_client(settings)
    deps = await build_deps(settings, redis=redis_client, clock=clock, rng=random.Random(1),
                            vendors=Vendors(settings, http, clock=clock))
    sandbox.state.inject("infinity", 429, times=1, retry_after=retry_after)
    await Events(redis_client, settings).accept(sample_event("segment.delete", T0, "evt_ra"))
    try:
        with pytest.raises(Retry) as raised:
            await EventDelivery(deps, "shopfront", "evt_ra").run()
    finally:
        await http.aclose()
    raw = await redis_client.hget(deps.keys.calls("shopfront", "evt_ra"), "infinity.delete_segment")
    assert [r.status for r in sandbox.state.requests] == [429]
    return raised.value, CallState.loads(raw)


async def test_retry_after_seconds_beyond_the_schedule_is_waited(make_settings, sandbox, redis_client):
    """429 `Retry-After: 300` against a schedule whose longest step is 30 s: the next try is 300 s later."""
    retry, state = await _one_run(make_settings, sandbox, redis_client, 300)
    assert state.status is Status.RETRYING and state.attempts == 1
    assert state.next_at == T0 + 300
    assert retry.defer_score == 300_000


async def test_retry_after_as_an_http_date(make_settings, sandbox, redis_client):
    """An HTTP-date ten minutes after "now" waits ten minutes."""
    when = email.utils.formatdate(T0 + 600, usegmt=True)
    retry, state = await _one_run(make_settings, sandbox, redis_client, when)
    assert state.next_at == T0 + 600
    assert retry.defer_score == 600_000


async def test_retry_after_above_the_cap_is_cut_to_it(make_settings, sandbox, redis_client):
    """A day's Retry-After with `max_retry_after_seconds = 120` waits 120 s, no more."""
    retry, state = await _one_run(make_settings, sandbox, redis_client, 86_400, max_retry_after_seconds=120)
    assert state.next_at == T0 + 120
    assert retry.defer_score == 120_000


async def test_retry_after_above_the_default_cap_waits_an_hour(make_settings, sandbox, redis_client):
    retry, state = await _one_run(make_settings, sandbox, redis_client, 86_400)
    assert state.next_at == T0 + 3600
