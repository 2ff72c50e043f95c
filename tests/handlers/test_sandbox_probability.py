"""The sandbox's probabilistic faults: a fault with `probability` p hits about p of the matching requests,
the same ones for the same seed, and counts `times` only for the requests it hit."""

from __future__ import annotations

import httpx
import pytest

from sandbox import SandboxState
from tests.support.sandbox import SandboxServer

SM = "/segmetrics/api/v1/1001/2002"
SM_AUTH = {"Authorization": "segmetrics-sandbox-key"}
CONTACT = {"contact_id": "249", "email": "joey@bloggs.com", "status": "active"}


def outcomes(state: SandboxState, n: int, vendor: str = "segmetrics") -> list[bool]:
    """Whether each of n requests drew the outcome fault."""
    return [state.take_faults(vendor, "POST", f"{SM}/contact")[1] is not None for _ in range(n)]


def test_probability_hits_about_that_share() -> None:
    """probability=0.3 over 10,000 requests fails between 28% and 32% of them."""
    state = SandboxState()
    state.inject("segmetrics", 503, times=10**6, probability=0.3, seed=7)
    hits = sum(outcomes(state, 10_000))
    assert 2_800 <= hits <= 3_200


def test_same_seed_same_requests() -> None:
    """Two states with the same seed fail the same requests; another seed fails others."""
    runs = []
    for seed in (1, 1, 2):
        state = SandboxState()
        state.inject("segmetrics", 503, times=10**6, probability=0.5, seed=seed)
        runs.append(outcomes(state, 200))
    assert runs[0] == runs[1] != runs[2]


def test_times_counts_only_the_requests_hit() -> None:
    """A fault of `times=3` at probability 0.5 applies exactly 3 times, then is gone."""
    state = SandboxState()
    state.inject("segmetrics", 503, times=3, probability=0.5, seed=3)
    assert sum(outcomes(state, 100)) == 3
    assert state.pending_faults == []


def test_other_vendors_do_not_draw() -> None:
    """A probabilistic fault on one vendor never touches another vendor's requests."""
    state = SandboxState()
    state.inject("segmetrics", 503, times=10**6, probability=0.9)
    assert not any(outcomes(state, 50, vendor="infinity"))


@pytest.mark.parametrize("probability", [0, -0.1, 1.5, "half"])
def test_probability_is_validated(probability: object) -> None:
    with pytest.raises(ValueError):
        SandboxState().inject("segmetrics", probability=probability)  # type: ignore[arg-type]


async def test_control_api_takes_probability(sandbox: SandboxServer) -> None:
    """`POST /_sandbox/faults` accepts probability and seed, echoes them, and the fault behaves the same."""
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        r = await client.post("/_sandbox/faults", json={"vendor": "segmetrics", "status": 503, "times": 1000,
                                                        "probability": 0.3, "seed": 11})
        assert r.status_code == 201
        assert (r.json()["fault"]["probability"], r.json()["fault"]["seed"]) == (0.3, 11)
        statuses = [(await client.post(f"{SM}/contact", json=CONTACT, headers=SM_AUTH)).status_code
                    for _ in range(200)]
        bad = await client.post("/_sandbox/faults", json={"vendor": "segmetrics", "probability": 2})
    assert set(statuses) == {200, 503}
    assert 30 <= statuses.count(503) <= 90
    assert bad.status_code == 400
