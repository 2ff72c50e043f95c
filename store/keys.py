"""Every Redis key sluice writes, in one place (like arq's constants.py).

All keys start with the configured namespace, so several deployments (or test runs) share one Redis safely.
arq's own keys (`arq:job:<job id>`, `arq:in-progress:<job id>`, `arq:retry:<job id>`) are namespaced through
the job id, and the queue itself is `<namespace>:queue`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = "sluice"

    @property
    def queue(self) -> str:
        """The arq queue (a sorted set of job ids scored by run time in ms)."""
        return f"{self.namespace}:queue"

    def job_id(self, source: str, event_id: str, suffix: str = "") -> str:
        base = f"{self.namespace}:{source}:{event_id}"
        return f"{base}:{suffix}" if suffix else base

    def seen(self, source: str, event_id: str) -> str:
        """Dedupe marker, set with NX and a TTL of dedupe_seconds."""
        return f"{self.namespace}:seen:{source}:{event_id}"

    def event(self, source: str, event_id: str) -> str:
        """The accepted event's JSON body."""
        return f"{self.namespace}:event:{source}:{event_id}"

    def calls(self, source: str, event_id: str) -> str:
        """Hash of `vendor.operation` -> call state JSON (the ledger)."""
        return f"{self.namespace}:calls:{source}:{event_id}"

    def lease(self, source: str, event_id: str) -> str:
        """Held by the one worker delivering an event right now."""
        return f"{self.namespace}:lease:{source}:{event_id}"

    @property
    def sequence(self) -> str:
        """Counter of accepted events: the tie-breaker of their order (SPEC rule 8)."""
        return f"{self.namespace}:seq"

    @property
    def owed(self) -> str:
        """Sorted set of `source/event_id` of events that still owe calls, scored by when their job was last
        seen (ms); the reconciler re-enqueues those whose job is gone."""
        return f"{self.namespace}:owed"

    @property
    def reconcile_lock(self) -> str:
        """Held by the one worker reconciling right now."""
        return f"{self.namespace}:reconcile"

    @property
    def last_accepted(self) -> str:
        """Hash source -> `<ms>|<event id>|<type>` of the last event accepted from it (the console's overview)."""
        return f"{self.namespace}:last-accepted"

    @property
    def replicas_fence(self) -> str:
        """Written by the ingress before each WAIT of `[redis] replicas_ack` (store/batch.py)."""
        return f"{self.namespace}:replicas-fence"

    def order(self, source: str, scope: str) -> str:
        """Hash of a scope's order (`vendor|subject` -> version of the latest write, `fence` -> version of the
        contact's latest erasure); scope is `contact:<id>` or `segment:<id>`."""
        return f"{self.namespace}:order:{source}:{scope}"

    def hold(self, vendor: str, source: str, scope: str) -> str:
        """Held by the one call of a scope in flight at a vendor."""
        return f"{self.namespace}:hold:{vendor}:{source}:{scope}"

    def dead_letter(self, dl_id: str) -> str:
        return f"{self.namespace}:dl:{dl_id}"

    @property
    def dead_index(self) -> str:
        """Sorted set of dead-letter ids scored by last_failed_at in ms."""
        return f"{self.namespace}:dl-index"

    @property
    def dead_counts(self) -> str:
        """Hash vendor -> number of dead letters stored now."""
        return f"{self.namespace}:dl-count"

    def rate(self, vendor: str) -> str:
        return f"{self.namespace}:rate:{vendor}"

    @property
    def metrics(self) -> str:
        """Hash of counters pushed by workers, read by the ingress's /metrics."""
        return f"{self.namespace}:metrics"
