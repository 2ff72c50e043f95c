"""The ceiling of bench/e2e.py: stock arq draining no-op jobs (pickle, results kept as by default).

    python bench/arq_noop.py REDIS_URL JOBS default|tuned|sluice

Enqueues JOBS no-op jobs with stock `enqueue_job`, then runs a stock arq worker in burst mode until the
queue is empty. Prints one JSON line: jobs, seconds from the first job's start to the last job's end, jobs/s.
default = arq's defaults (max_jobs 10, poll_delay 0.5 s); tuned = poll_delay 0.01 s, max_jobs 500;
sluice = tuned, run by sluice's `worker.arq_worker.SluiceWorker` (one-round-trip claims, batched finishes)
instead of stock arq's Worker: how much of the ceiling is arq's own Redis traffic.
"""

from __future__ import annotations

import asyncio
import sys
import time

from pathlib import Path

import orjson
from arq import Worker, create_pool
from arq.connections import RedisSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.arq_worker import SluiceWorker  # noqa: E402

QUEUE = "bench:arq-noop"
TUNED = {"poll_delay": 0.01, "max_jobs": 500}
marks: list[float] = []
RUN = f"{time.time():.6f}"


async def noop(ctx: dict) -> None:  # type: ignore[type-arg]
    marks.append(time.time())


async def enqueue(url: str, jobs: int) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url))
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            await pool.enqueue_job("noop", _job_id=f"noop-{RUN}-{i}", _queue_name=QUEUE)

    await asyncio.gather(*(one(i) for i in range(jobs)))
    await pool.aclose()


def main() -> None:
    url, jobs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    asyncio.run(enqueue(url, jobs))
    options = TUNED if mode in ("tuned", "sluice") else {}
    worker_class = SluiceWorker if mode == "sluice" else Worker
    worker = worker_class(functions=[noop], redis_settings=RedisSettings.from_dsn(url), queue_name=QUEUE, burst=True,
                    handle_signals=False, **options)  # type: ignore[arg-type]
    start = time.time()
    worker.run()
    seconds = max(marks) - min(marks) if len(marks) > 1 else time.time() - start
    print(orjson.dumps({"jobs": len(marks), "seconds": seconds, "rate": len(marks) / seconds}).decode())


if __name__ == "__main__":
    main()
