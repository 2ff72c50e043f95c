"""The one-round-trip claim makes stock arq's decision: due, still queued, held by no one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from store.keys import Keys
from worker.claim import ClaimingWorker


async def noop(ctx: dict) -> None:
    return None


@pytest.fixture
async def worker(redis_url: str, namespace: str) -> AsyncIterator[ClaimingWorker]:
    pool = ArqRedis.from_url(redis_url)
    w = ClaimingWorker(functions=[noop], redis_pool=pool, queue_name=Keys(namespace).queue, max_jobs=3,
                       handle_signals=False, job_timeout=20)
    yield w
    await pool.aclose()


async def test_claims_only_due_queued_unheld_jobs(worker: ClaimingWorker, namespace: str) -> None:
    pool, queue, now = worker.pool, worker.queue_name, timestamp_ms()
    due, later, held, gone = (f"{namespace}:{name}" for name in ("due", "later", "held", "gone"))
    await pool.zadd(queue, {due: now - 5, later: now + 60_000, held: now - 5})
    await pool.set(in_progress_key_prefix + held, b"1")

    claimed = await worker.claim([due, later, held, gone])

    assert claimed == [(due, now - 5)]
    ttl = await pool.pttl(in_progress_key_prefix + due)
    assert (worker.in_progress_timeout_s - 1) * 1000 < ttl <= worker.in_progress_timeout_s * 1000
    assert await pool.exists(in_progress_key_prefix + later) == 0
    assert await worker.claim([due]) == []  # a second claimer (another worker) gets nothing


async def test_room_of_unclaimed_jobs_is_given_back(worker: ClaimingWorker, namespace: str) -> None:
    pool, queue, now = worker.pool, worker.queue_name, timestamp_ms()
    ids = [f"{namespace}:{i}" for i in range(5)]
    await pool.zadd(queue, {job_id: now - 5 for job_id in ids})
    await pool.set(in_progress_key_prefix + ids[0], b"1")  # another worker runs this one
    room = worker.sem._value

    await worker.start_jobs([job_id.encode() for job_id in ids])

    # max_jobs is 3: three taken from the poll, one of which another worker held
    assert sorted(worker.tasks) == ids[1:3]
    assert worker.job_counter == 2
    await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), 10)  # no job data: arq finishes them
    assert worker.job_counter == 0
    assert worker.sem._value == room
