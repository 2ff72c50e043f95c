"""Every time bound of a worker, derived in one place from two settings (SPEC section 5 rules 5, 6 and 8).

- a **call** takes at most its rate-limit wait (`rate_max_wait_seconds`), its whole vendor operation
  (`timeout_seconds`) and its ledger write (`RECORD_SECONDS`);
- a contact's **hold** (one call in flight per vendor and contact) lasts one call and `HOLD_SLACK_SECONDS`,
  so a dead worker's hold lapses on its own;
- a job **run** starts a call only while a whole call still fits before its deadline: one call plus
  `FOLLOW_UP_SECONDS`, room for the next calls of a contact, sent one after another;
- arq's **job_timeout** is the run's deadline plus `RETRY_SECONDS`: a run that reaches its deadline (Redis
  stalled, say) turns into `arq.Retry` itself, because arq drops a job it has to time out;
- arq takes up a dead worker's job when its in-progress key expires, `job_timeout + ARQ_IN_PROGRESS_EXTRA`
  after it started; the event lease lapses earlier.

Rule 5 asks for that within `timeout_seconds + 30 s`, which bounds `rate_max_wait_seconds` (`MAX_RATE_WAIT`).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_SECONDS = 1.0
HOLD_SLACK_SECONDS = 2.0
FOLLOW_UP_SECONDS = 5.0
RETRY_SECONDS = 3.0
LEASE_EXTRA_SECONDS = 5.0
ARQ_IN_PROGRESS_EXTRA = 10.0  # arq: in_progress_timeout_s = job_timeout + 10
PICKUP_ALLOWANCE = 30.0  # SPEC rule 5: taken up again within timeout_seconds + 30 s

MAX_RATE_WAIT = PICKUP_ALLOWANCE - (RECORD_SECONDS + FOLLOW_UP_SECONDS + RETRY_SECONDS + ARQ_IN_PROGRESS_EXTRA)
"""The longest rate-limit wait in a run that keeps rule 5 (11 s)."""


@dataclass(frozen=True, slots=True)
class Timing:
    call_seconds: float
    run_seconds: float
    job_timeout: float
    lease_ms: int
    hold_ms: int
    pickup_seconds: float

    @classmethod
    def of(cls, timeout_seconds: float, rate_max_wait_seconds: float) -> Timing:
        call = rate_max_wait_seconds + timeout_seconds + RECORD_SECONDS
        run = call + FOLLOW_UP_SECONDS
        job_timeout = run + RETRY_SECONDS
        return cls(
            call_seconds=call,
            run_seconds=run,
            job_timeout=job_timeout,
            lease_ms=int((job_timeout + LEASE_EXTRA_SECONDS) * 1000),
            hold_ms=int((call + HOLD_SLACK_SECONDS) * 1000),
            pickup_seconds=job_timeout + ARQ_IN_PROGRESS_EXTRA,
        )

    def keeps_pickup_rule(self, timeout_seconds: float) -> bool:
        return self.pickup_seconds <= timeout_seconds + PICKUP_ALLOWANCE + 1e-9
