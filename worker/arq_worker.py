"""arq's Worker with two changes to its Redis traffic, nothing else: the jobs a poll found are claimed in ONE
round trip (not four each), and a finished job's bookkeeping joins a shared group-commit pipeline.

Stock arq claims job by job, in turn: WATCH the in-progress key, EXISTS, ZSCORE, then MULTI/PSETEX/EXEC, four
round trips per job before it can start (bench/README.md: the largest Redis cost of a worker, and what caps
stock arq's own no-op rate). `CLAIM_LUA` makes exactly the same decision for every job of the poll at once,
atomically inside Redis: a job is taken when no worker holds it (no in-progress key), it is still queued,
and it is due; taking it sets the in-progress key with arq's own timeout, so stock arq workers and these ones
can share a queue. `FINISH_LUA` does what arq's `finish_job` transaction does (drop or extend the
in-progress key; on finish store the result and drop the job, its retry count and its queue entry; on a
retry move the job's score), atomically, as one EVALSHA in a `store.batch.PipelineBatcher`: jobs finishing
together share one round trip instead of a MULTI/EXEC each. Everything else (running jobs, retries,
timeouts, shutdown) is arq's code, unchanged.

This overrides `Worker.start_jobs` and `Worker.finish_job` of the pinned arq version (0.28) and uses the
attributes those methods use; the worker tests (crash, restart, fleet) run through it.
"""

from __future__ import annotations

from typing import Any

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms, to_ms
from arq.worker import Worker

from store.batch import PipelineBatcher, queue_script

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


FINISH_LUA = """
local job_id, finish, keep_ms, result, result_ms, incr = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if keep_ms ~= '' then
  redis.call('PEXPIRE', KEYS[1], keep_ms)
else
  redis.call('DEL', KEYS[1])
end
if finish == '1' then
  if result ~= '' then
    if result_ms ~= '' then
      redis.call('SET', KEYS[4], result, 'PX', result_ms)
    else
      redis.call('SET', KEYS[4], result)
    end
  end
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[5], job_id)
  redis.call('ZREM', KEYS[6], job_id)
elseif incr ~= '' then
  local score = tonumber(redis.call('ZSCORE', KEYS[6], job_id))
  if ARGV[7] == '' or (score and math.abs(score - tonumber(ARGV[7])) < 1) then
    redis.call('ZINCRBY', KEYS[6], incr, job_id)
  end
end
return 1
"""
"""KEYS: in-progress, retry, job, result keys of the job, arq's abort set, the queue. ARGV: job id, finish
(1/0), keep-in-progress ms or '', result bytes or '', result expiry ms or '' (forever), score increment or '',
the job's score when it was claimed. The increment applies only while the score is still that one, so the
script is safe to run twice (a pipeline resent after a dropped connection moves the job once)."""


class SluiceWorker(Worker):
    """`arq.worker.Worker` that claims a poll's jobs in one script call and finishes jobs in a shared pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claim_script: Any = None
        self._finish_script: Any = None
        self._batcher: PipelineBatcher | None = None
        self._claimed_scores: dict[str, int] = {}

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
            self._claimed_scores[job_id] = score
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's `finish_job`, as one atomic script in the shared pipeline."""
        if self._batcher is None:
            self._batcher = PipelineBatcher(self.pool)
            self._finish_script = self.pool.register_script(FINISH_LUA)
        result_ms = None if keep_result_forever else to_ms(result_timeout_s)
        keys = [in_progress_key_prefix + job_id, retry_key_prefix + job_id, job_key_prefix + job_id,
                result_key_prefix + job_id, abort_jobs_ss, self.queue_name]
        args = [
            job_id,
            "1" if finish else "0",
            "" if keep_in_progress is None else to_ms(keep_in_progress),
            result_data or "",
            "" if result_ms is None else result_ms,
            incr_score or "",
            self._claimed_scores.pop(job_id, ""),
        ]
        await self._batcher.submit(lambda pipe: queue_script(pipe, self._finish_script, keys, args))

    def _give_back(self, n: int) -> None:
        for _ in range(n):
            self.job_counter -= 1
            self.sem.release()
