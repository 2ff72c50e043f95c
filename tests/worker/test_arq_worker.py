"""SluiceWorker: the one-round-trip claim makes stock arq's decision (due, still queued, held by no one), and
its finish leaves Redis exactly as stock arq's does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms
from arq.worker import Worker

from store.keys import Keys
from worker.arq_worker import SluiceWorker


async def noop(ctx: dict) -> None:
    return None


@pytest.fixture
async def worker(redis_url: str, namespace: str) -> AsyncIterator[SluiceWorker]:
    pool = ArqRedis.from_url(redis_url)
    w = SluiceWorker(functions=[noop], redis_pool=pool, queue_name=Keys(namespace).queue, max_jobs=3,
                       handle_signals=False, job_timeout=20)
    yield w
    await pool.aclose()


async def test_claims_only_due_queued_unheld_jobs(worker: SluiceWorker, namespace: str) -> None:
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


async def test_room_of_unclaimed_jobs_is_given_back(worker: SluiceWorker, namespace: str) -> None:
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


FINISHES = {
    "done": dict(finish=True, result_data=None, result_timeout_s=None, keep_result_forever=False,
                 incr_score=None, keep_in_progress=None),
    "done, result kept 60 s": dict(finish=True, result_data=b"\x00result", result_timeout_s=60,
                                   keep_result_forever=False, incr_score=None, keep_in_progress=None),
    "done, result kept forever": dict(finish=True, result_data=b"r", result_timeout_s=None,
                                      keep_result_forever=True, incr_score=None, keep_in_progress=None),
    "retry later": dict(finish=False, result_data=None, result_timeout_s=None, keep_result_forever=False,
                        incr_score=1500, keep_in_progress=None),
    "cancelled, kept in progress": dict(finish=False, result_data=None, result_timeout_s=None,
                                        keep_result_forever=False, incr_score=None, keep_in_progress=30.0),
}


@pytest.mark.parametrize("case", FINISHES)
async def test_finish_leaves_redis_as_stock_arq_does(worker: SluiceWorker, namespace: str, case: str) -> None:
    pool, queue = worker.pool, worker.queue_name

    async def state_after(finish_job: Any, job_id: str) -> dict[str, Any]:
        await pool.set(in_progress_key_prefix + job_id, b"1", px=50_000)
        await pool.set(retry_key_prefix + job_id, b"1")
        await pool.set(job_key_prefix + job_id, b"job")
        await pool.zadd(queue, {job_id: 1000})
        await pool.zadd(abort_jobs_ss, {job_id: 1})
        await finish_job(worker, job_id, **FINISHES[case])
        ttl = {k: await pool.pttl(k + job_id) for k in (in_progress_key_prefix, result_key_prefix)}
        state = {
            "in_progress": await pool.exists(in_progress_key_prefix + job_id),
            "in_progress_ttl_s": round(ttl[in_progress_key_prefix] / 1000, -1),
            "retry": await pool.exists(retry_key_prefix + job_id),
            "job": await pool.exists(job_key_prefix + job_id),
            "result": await pool.get(result_key_prefix + job_id),
            "result_ttl_s": round(ttl[result_key_prefix] / 1000, -1),
            "score": await pool.zscore(queue, job_id),
            "abort": await pool.zscore(abort_jobs_ss, job_id),
        }
        await pool.delete(*(p + job_id for p in (in_progress_key_prefix, retry_key_prefix, job_key_prefix,
                                                   result_key_prefix)))
        await pool.zrem(abort_jobs_ss, job_id)
        return state

    stock = await state_after(Worker.finish_job, f"{namespace}:stock")
    ours = await state_after(SluiceWorker.finish_job, f"{namespace}:ours")
    assert ours == stock
