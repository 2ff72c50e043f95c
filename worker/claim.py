"""arq's Worker with one change: the jobs a poll found are claimed in ONE Redis round trip, not four each.

Stock arq claims job by job, in turn: WATCH the in-progress key, EXISTS, ZSCORE, then MULTI/PSETEX/EXEC, four
round trips per job before it can start (bench/README.md: the largest Redis cost of a worker, and what caps
stock arq's own no-op rate). `CLAIM_LUA` makes exactly the same decision for every job of the poll at once,
atomically inside Redis: a job is taken when no worker holds it (no in-progress key), it is still queued,
and it is due; taking it sets the in-progress key with arq's own timeout, so stock arq workers and these ones
can share a queue. Everything else (running, retrying, finishing jobs) is arq's code, unchanged.

This overrides `Worker.start_jobs` of the pinned arq version (0.28) and uses the attributes that method
uses; the worker tests (crash, restart, fleet) run through it.
"""

from __future__ import annotations

from typing import Any

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

CLAIM_LUA = """
local now, prefix, timeout_ms = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local claimed = {}
for i = 4, #ARGV do
  local job_id = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], job_id)
  if score and tonumber(score) <= now and redis.call('EXISTS', prefix .. job_id) == 0 then
    redis.call('PSETEX', prefix .. job_id, timeout_ms, '1')
    claimed[#claimed + 1] = job_id
    claimed[#claimed + 1] = score
  end
end
return claimed
"""
"""KEYS[1] the queue; ARGV: now (ms), the in-progress key prefix, arq's in-progress timeout (ms), job ids.
The in-progress keys are built inside, as arq builds them (arq runs on a single Redis, never a cluster)."""


class ClaimingWorker(Worker):
    """`arq.worker.Worker` whose `start_jobs` claims a poll's jobs in one script call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claim_script: Any = None

    async def claim(self, job_ids: list[str]) -> list[tuple[str, int]]:
        """Take the given jobs that are due and held by no one; (job id, score) of those taken, in order."""
        if self._claim_script is None:
            self._claim_script = self.pool.register_script(CLAIM_LUA)
        timeout_ms = int(self.in_progress_timeout_s * 1000)
        reply = await self._claim_script(
            keys=[self.queue_name], args=[timestamp_ms(), in_progress_key_prefix, timeout_ms, *job_ids]
        )
        return [(reply[i].decode(), int(float(reply[i + 1]))) for i in range(0, len(reply), 2)]

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Reserve room for as many of `job_ids` as fit (waiting only for the first), claim them together,
        start the ones claimed, and give the room of the others back."""
        wanted: list[str] = []
        for job_id in job_ids:
            if wanted and self.sem.locked():
                break  # no room without waiting: start what we have, the rest come back on the next poll
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                break
            self.job_counter += 1
            wanted.append(job_id.decode())
        if not wanted:
            return
        try:
            claimed = await self.claim(wanted)
        except BaseException:
            self._give_back(len(wanted))
            raise
        self._give_back(len(wanted) - len(claimed))
        for job_id, score in claimed:
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    def _give_back(self, n: int) -> None:
        for _ in range(n):
            self.job_counter -= 1
            self.sem.release()
