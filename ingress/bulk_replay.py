"""Bulk replay in the background, shared by the admin API and the console.

`BulkReplays.start(letters)` answers at once and replays the letters in batches of `REPLAY_BATCH` (one
round trip each, `DeadLetterStore.replay_batch`), yielding to the event loop between batches so a replay of
10,000 letters never holds up webhook requests. Each run's progress is a `BulkReplay` the console shows;
the ingress's shutdown waits for running replays (`close`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from store.dead_letters import DeadLetterStore

log = structlog.get_logger("sluice.admin")

REPLAY_BATCH = 500
KEPT = 50
"""How many finished runs stay visible (progress pages of this process); older ones are forgotten."""


@dataclass(slots=True)
class BulkReplay:
    """One run's progress: `processed` of `requested` letters looked at, `replayed` of them were still there."""

    id: str
    requested: int
    force: bool = False
    processed: int = 0
    replayed: int = 0
    finished: bool = False
    failed: str | None = None


async def replay_all(store: DeadLetterStore, letters: Sequence[dict[str, Any]], progress: BulkReplay) -> int:
    for i in range(0, len(letters), REPLAY_BATCH):
        batch = letters[i : i + REPLAY_BATCH]
        progress.replayed += await store.replay_batch(batch, force=progress.force)
        progress.processed += len(batch)
        await asyncio.sleep(0)  # let webhook requests in between batches
    log.info("bulk_replay_done", replayed=progress.replayed, requested=len(letters), force=progress.force)
    return progress.replayed


class BulkReplays:
    """This process's bulk replays: running ones (awaited at shutdown) and the last `KEPT` runs' progress."""

    def __init__(self, store: DeadLetterStore) -> None:
        self.store = store
        self.runs: dict[str, BulkReplay] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, letters: Sequence[dict[str, Any]], *, force: bool = False) -> BulkReplay:
        progress = BulkReplay(id=secrets.token_hex(8), requested=len(letters), force=force)
        self.runs[progress.id] = progress
        while len(self.runs) > KEPT:
            del self.runs[next(iter(self.runs))]
        task = asyncio.create_task(self._run(letters, progress))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return progress

    async def _run(self, letters: Sequence[dict[str, Any]], progress: BulkReplay) -> None:
        try:
            await replay_all(self.store, letters, progress)
        except (RedisError, OSError) as exc:  # Redis went away mid-run: what is left stays dead-lettered
            progress.failed = f"Redis error after {progress.processed} of {progress.requested}: {exc}"
            log.warning("bulk_replay_failed", replayed=progress.replayed, requested=progress.requested,
                        error=str(exc))
        finally:
            progress.finished = True

    def get(self, run_id: str) -> BulkReplay | None:
        return self.runs.get(run_id)

    async def close(self) -> None:
        """Let running bulk replays finish (the ingress's shutdown waits for them)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
