"""Real worker processes (`python -m worker`, as the Procfile runs them) for crash and signal tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis

import config.toml
from core.routing import plan
from store.calls import CallState, Ledger
from store.keys import Keys

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, data: Mapping[str, Any]) -> Path:
    """A TOML config file from a config mapping."""
    return config.toml.write(path, data)


class WorkerProcess:
    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["SLUICE_CONFIG"] = str(config)
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self.log.closed:
            self.log.close()


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition",
               logs: list[Path] | None = None) -> None:
    """Poll `check` until true; fail after `timeout` seconds (a bound, not a sleep), quoting the tail of `logs`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    tails = "".join(f"\n--- {p.name}:\n" + "".join(p.read_text(errors="replace").splitlines(True)[-15:])
                    for p in logs or [] if p.exists())
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tails}")


def unfinished(client: redis.Redis, keys: Keys, routes: Mapping[str, tuple[str, ...]], source: str,
               events: list[dict[str, Any]]) -> list[str]:
    """Ids of events with a planned call that is not yet final (succeeded, skipped, dead or superseded)."""
    with client.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.hgetall(keys.calls(source, event["id"]))
        all_states = pipe.execute()
    left = []
    for event, raw in zip(events, all_states, strict=True):
        states = Ledger.parse(raw).states
        for vendor, operation in plan(event, routes):
            if not states.get(f"{vendor}.{operation}", CallState()).status.final:
                left.append(event["id"])
                break
    return left


def final_statuses(client: redis.Redis, keys: Keys, source: str, events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        for state in Ledger.parse(client.hgetall(keys.calls(source, event["id"]))).states.values():
            counts[state.status.value] = counts.get(state.status.value, 0) + 1
    return counts


class SandboxProcess:
    """The vendor sandbox as a process of its own (`python -m sandbox`), driven over its control API,
    so that load tests do not share a GIL with it."""

    def __init__(self, log: Path) -> None:
        import httpx

        from tests.support.redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(self.port)],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=f"{self.url}/_sandbox", timeout=30)

        def up() -> bool:
            try:
                return self.http.get("/state").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 20, 0.05, "the sandbox process")

    def vendor_tables(self) -> dict[str, Any]:
        from sandbox.config import sandbox_vendor_tables

        return sandbox_vendor_tables(self.url)

    def inject(self, **fault: Any) -> None:
        self.http.post("/faults", json=fault).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return list(self.http.get("/requests").json())

    def duplicate_count(self) -> int:
        return int(self.http.get("/duplicates").json()["count"])

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


def succeeded_calls(client: redis.Redis, keys: Keys) -> int:
    """Vendor calls recorded as succeeded so far, from the counters workers push (cheap to poll)."""
    return sum(int(v) for k, v in client.hgetall(keys.metrics).items() if k.endswith(b"|succeeded"))
