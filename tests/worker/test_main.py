"""`python -m worker` keeps going when Redis fails under arq's own loop, and stops when arq stops."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError, WatchError

import worker.__main__ as entry


@pytest.mark.parametrize("failure", [WatchError("A ConnectionError occurred on while watching one or more keys"),
                                     ConnectionError("Error 111 connecting"), OSError("reset")])
def test_a_redis_failure_restarts_the_loop(monkeypatch, settings, failure) -> None:
    """A Redis failure that escapes arq (e.g. the WatchError redis-py raises for a connection lost during
    WATCH) restarts the worker after a pause; a normal return (SIGTERM) ends it."""
    runs: list[object] = []

    def run_worker(options: dict) -> None:
        runs.append(options)
        if len(runs) == 1:
            raise failure

    pauses: list[float] = []
    monkeypatch.setattr(entry, "load_or_exit", lambda: settings)
    monkeypatch.setattr(entry, "configure_logging", lambda: None)
    monkeypatch.setattr(entry, "freeze_startup_heap", lambda: None)
    monkeypatch.setattr(entry, "run_worker", run_worker)
    monkeypatch.setattr(entry.time, "sleep", pauses.append)
    entry.main()
    assert len(runs) == 2 and pauses == [entry.RESTART_PAUSE]


def test_other_errors_are_not_swallowed(monkeypatch, settings) -> None:
    def run_worker(options: dict) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(entry, "load_or_exit", lambda: settings)
    monkeypatch.setattr(entry, "configure_logging", lambda: None)
    monkeypatch.setattr(entry, "freeze_startup_heap", lambda: None)
    monkeypatch.setattr(entry, "run_worker", run_worker)
    with pytest.raises(RuntimeError):
        entry.main()
