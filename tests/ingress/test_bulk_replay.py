"""Background bulk replay (ingress.bulk_replay), shared by the admin API and the console."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from ingress.bulk_replay import REPLAY_BATCH, BulkReplays


class RecordingStore:
    """Stands in for DeadLetterStore.replay_batch: records each batch and its options."""

    def __init__(self, *, missing: int = 0, fail_after: int | None = None) -> None:
        self.batches: list[tuple[int, dict[str, Any]]] = []
        self.missing = missing
        self.fail_after = fail_after

    async def replay_batch(self, letters: list[dict[str, Any]], **options: Any) -> int:
        if self.fail_after is not None and len(self.batches) == self.fail_after:
            raise RedisConnectionError("gone")
        self.batches.append((len(letters), options))
        return len(letters) - (self.missing if len(self.batches) == 1 else 0)


def letters(n: int) -> list[dict[str, Any]]:
    return [{"id": f"dl_{i}"} for i in range(n)]


async def test_replays_in_batches_and_counts_what_was_still_there() -> None:
    """1,200 letters go in batches of 500; letters already gone are processed but not counted as replayed."""
    store = RecordingStore(missing=3)
    runs = BulkReplays(store)  # type: ignore[arg-type]
    run = runs.start(letters(1200))
    await runs.close()
    assert [size for size, _ in store.batches] == [REPLAY_BATCH, REPLAY_BATCH, 200]
    assert (run.requested, run.processed, run.replayed, run.finished, run.failed) == (1200, 1200, 1197, True, None)
    assert runs.get(run.id) is run and runs.get("nope") is None


async def test_force_is_passed_only_when_asked_for() -> None:
    """An unforced replay calls the store exactly as before `force` existed."""
    store = RecordingStore()
    runs = BulkReplays(store)  # type: ignore[arg-type]
    runs.start(letters(2))
    runs.start(letters(2), force=True)
    await runs.close()
    assert sorted(options.get("force", False) for _, options in store.batches) == [False, True]


async def test_a_redis_error_mid_run_is_reported_not_raised() -> None:
    store = RecordingStore(fail_after=1)
    runs = BulkReplays(store)  # type: ignore[arg-type]
    run = runs.start(letters(REPLAY_BATCH + 1))
    await runs.close()
    assert run.finished and run.replayed == REPLAY_BATCH
    assert run.failed is not None and "after 500 of 501" in run.failed


async def test_only_the_last_runs_are_kept() -> None:
    runs = BulkReplays(RecordingStore())  # type: ignore[arg-type]
    started = [runs.start(letters(1)) for _ in range(60)]
    await runs.close()
    assert len(runs.runs) == 50 and runs.get(started[0].id) is None and runs.get(started[-1].id) is started[-1]
