"""Helpers of the reliability suite: the ingress as a uvicorn process, a feeder that offers events at a
steady rate through the ingress's own Lua script (riding out a Redis restart the way a sender retries a 503),
the JSON log lines of a process, and a figures line printed for the report (`pytest -s` shows it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from config.settings import DeliverySettings
from store.intake import ACCEPT_LUA, Intake
from store.keys import Keys
from tests.support.fleet import ROOT, wait_until
from tests.support.redis_server import free_port


class IngressProcess:
    """`python -m uvicorn --factory ingress.app:create_app` (the Procfile's web process) on a free port."""

    def __init__(self, config: Path, log: Path, *, port: int | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["SLUICE_CONFIG"] = str(config)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "ingress.app:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-server-header"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the ingress exited: {log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, 0.05, "the ingress process")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not self.log.closed:
            self.log.close()


class Feeder:
    """Stores events exactly as the ingress does (one ACCEPT_LUA per event). A batch that fails on a Redis
    error is offered again, as a sender retries a 503; a retry finding the event already stored counts it
    as accepted once."""

    def __init__(self, client: redis.Redis, keys: Keys, source: str = "shopfront") -> None:
        self.client, self.keys, self.source = client, keys, source
        self.intake = Intake(client, keys, DeliverySettings(dedupe_seconds=3600))  # type: ignore[arg-type]
        self.accepted = 0
        self.redis_errors = 0

    def offer(self, events: list[dict[str, Any]], give_up_after: float = 60) -> None:
        deadline = time.monotonic() + give_up_after
        while True:
            try:
                self._accept(events)
                self.accepted += len(events)
                return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
                self.redis_errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _accept(self, events: list[dict[str, Any]]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                keys, args = self.intake.accept_args(self.source, event, orjson.dumps(event))
                pipe.eval(ACCEPT_LUA, len(keys), *keys, *args)
            pipe.execute()


def log_lines(*paths: Path) -> list[dict[str, Any]]:
    """Every JSON log line of the given process logs (other lines, e.g. a traceback, are skipped)."""
    found = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            if line.startswith(b"{"):
                try:
                    found.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
    return found


def timestamp(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def figures(name: str, values: dict[str, Any]) -> None:
    """One line of figures, e.g. `FIGURES chaos events_accepted=5000 ...`, for the report."""
    print(f"\nFIGURES {name} " + " ".join(f"{k}={v}" for k, v in values.items()), flush=True)


def count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)
