"""ingress/deadlines.py: a body read is cut at its deadline, and a quick one leaves no timer behind."""

from __future__ import annotations

import asyncio

import pytest

from ingress.deadlines import BodyDeadlines


async def test_a_quick_read_costs_no_timer_and_the_ticker_stops() -> None:
    deadlines = BodyDeadlines(5.0, tick=0.01)
    async def quick() -> None:
        pass

    await deadlines.read_within(quick())
    assert deadlines._reads == {}
    await asyncio.sleep(0.03)  # past a tick: with nothing noted the ticker does not re-arm
    assert deadlines._ticker is None


async def test_a_read_that_outlives_its_deadline_is_cut_at_it() -> None:
    loop = asyncio.get_running_loop()
    deadlines = BodyDeadlines(0.2, tick=0.05)
    started = loop.time()
    with pytest.raises(TimeoutError):
        await deadlines.read_within(asyncio.Event().wait())
    took = loop.time() - started
    assert 0.2 <= took < 0.2 + 0.1


async def test_one_slow_read_among_quick_ones() -> None:
    """Reads that end in time are untouched (no cancellation leaks into them, also not into one that was given
    its timer by a tick and ended before it fired); only the slow one is cut."""
    deadlines = BodyDeadlines(0.3, tick=0.1)
    results: list[str] = []

    async def read(wait: float) -> None:
        try:
            await deadlines.read_within(asyncio.sleep(wait))
            await asyncio.sleep(0.4)  # past every deadline: a read that ended is never cut afterwards
            results.append("read")
        except TimeoutError:
            results.append("cut")

    await asyncio.gather(*(read(0.01 * (i % 5)) for i in range(40)), read(0.22), read(10.0))
    assert results.count("read") == 41 and results.count("cut") == 1
    assert deadlines._reads == {} and deadlines._timed == {}


async def test_an_error_inside_a_read_passes_through() -> None:
    deadlines = BodyDeadlines(1.0)
    async def failing() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await deadlines.read_within(failing())
    assert deadlines._reads == {}


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = BodyDeadlines(0.2, tick=0.05)
    task = asyncio.ensure_future(deadlines.read_within(asyncio.Event().wait()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._reads == {} and deadlines._timed == {}
