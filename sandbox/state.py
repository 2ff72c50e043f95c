"""Everything the sandbox remembers: each vendor's data (the four stores, which know nothing of this module),
every request it received, and the faults queued for the next requests. Shared between the server's thread
(its event loop) and the test's thread, so every read or write goes through `lock`."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from core.clock import Clock, system_clock
from sandbox.credentials import SandboxCredentials
from sandbox.infinity import InfinityStore
from sandbox.personaclick import PersonaClickStore
from sandbox.records import SAFE_METHODS, VENDORS, Fault, RecordedRequest
from sandbox.salesmachine import SalesmachineStore
from sandbox.segmetrics import SegMetricsStore


class SandboxState:
    """The sandbox's memory. `inject` queues faults; `requests` lists what was received; `duplicates`
    finds writes that succeeded more than once under one idempotency key."""

    def __init__(self, credentials: SandboxCredentials | None = None, *, clock: Clock = system_clock) -> None:
        self.credentials = credentials or SandboxCredentials()
        self.clock = clock
        self.lock = threading.RLock()
        self._records: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self.reset()

    # -- data -----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every request, fault and stored record; the pre-seeded data comes back."""
        with self.lock:
            self._records = []
            self._faults = []
            self.segmetrics = SegMetricsStore()
            self.salesmachine = SalesmachineStore(clock=self.clock)
            self.personaclick = PersonaClickStore()
            self.infinity = InfinityStore(igrp=self.credentials.infinity_igrp)

    def snapshot(self) -> dict[str, Any]:
        """Every vendor's data as plain JSON-able values."""
        with self.lock:
            return {
                "segmetrics": self.segmetrics.snapshot(),
                "salesmachine": self.salesmachine.snapshot(),
                "personaclick": self.personaclick.snapshot(),
                "infinity": self.infinity.snapshot(),
            }

    # -- faults ---------------------------------------------------------------------------------------

    def inject(
        self,
        vendor: str,
        status: int = 503,
        times: int = 1,
        path_contains: str | None = None,
        retry_after: str | float | None = None,
        delay: float | None = None,
        drop: bool | str = False,
        *,
        method: str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        probability: float = 1.0,
        seed: int = 0,
    ) -> Fault:
        """The next `times` requests of `vendor` ("*" = any) whose path contains `path_contains` (and whose
        method is `method`) get `status` (with Retry-After when given), or are delayed, or dropped; with
        `probability` < 1, each matching request gets it only with that chance (seeded RNG)."""
        if vendor not in (*VENDORS, "*"):
            raise ValueError(f"unknown vendor {vendor!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status")
        if drop not in (True, False, "before", "after"):
            raise ValueError('drop is True, False, "before" or "after"')
        if not (isinstance(probability, (int, float)) and 0 < probability <= 1):
            raise ValueError("probability must be in (0, 1]")
        retry = None
        if retry_after is not None:
            retry = str(int(retry_after)) if isinstance(retry_after, (int, float)) else str(retry_after)
        fault = Fault(vendor, status, times, path_contains, method.upper() if method else None, retry,
                      delay, drop, body, content_type, float(probability), int(seed))
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self._faults = []

    def take_faults(self, vendor: str, method: str, path: str) -> tuple[Fault | None, Fault | None]:
        """The faults this request gets, each used up by one: the first matching latency fault (a `delay`
        alone) and the first matching outcome fault (a status or a drop). Both may apply: a request can be
        slow and then fail."""
        latency: Fault | None = None
        outcome: Fault | None = None
        with self.lock:
            for fault in list(self._faults):
                if not fault.matches(vendor, method, path):
                    continue
                if fault.is_latency:
                    if latency is not None or not fault.draw():
                        continue
                    latency = fault
                else:
                    if outcome is not None or not fault.draw():
                        continue
                    outcome = fault
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
        return latency, outcome

    @property
    def pending_faults(self) -> list[Fault]:
        with self.lock:
            return list(self._faults)

    # -- recording ------------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> RecordedRequest:
        with self.lock:
            self._records.append(request)
        return request

    def set_status(self, request: RecordedRequest, status: int | None, fault: str | None = None) -> None:
        with self.lock:
            request.status = status
            if fault is not None:
                request.fault = fault

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._records)

    def requests_for(
        self, vendor: str | None = None, *, method: str | None = None, path_contains: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (vendor is None or r.vendor == vendor)
            and (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]

    def duplicates(self) -> dict[tuple[str, str, str], int]:
        """Writes that got a 2xx more than once with the same Idempotency-Key, method and path:
        {(key, method, path): times}. Reads (GET) are never duplicates: a multi-request operation repeats
        its lookups on a retry, harmlessly."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for r in self.requests:
            if r.idempotency_key and r.method not in SAFE_METHODS and r.status is not None and 200 <= r.status < 300:
                counts[(r.idempotency_key, r.method, r.path)] += 1
        return {key: n for key, n in counts.items() if n > 1}

    def duplicate_count(self) -> int:
        """How many writes were one too many: the sum over `duplicates()` of (times - 1)."""
        return sum(n - 1 for n in self.duplicates().values())
