"""The README's first command, end to end: `python -m cli.up --smoke` (what `python3 dev.py up --smoke` runs)
brings up the sandbox, web and a worker, sends a signed event and sees every call succeed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("redis", ["shared", "private"])
def test_up_smoke(tmp_path, redis_url, redis) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_CONFIG", "REDIS_URL")}
    # "private": nothing answers at REDIS_URL, so `up` starts a redis-server of its own
    env["REDIS_URL"] = redis_url if redis == "shared" else f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-m", "cli.up", "--smoke", "--port", str(free_port()), "--sandbox-port", str(free_port()),
         "--state", str(tmp_path / "state")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "202 " in done.stdout and "salesmachine.track_event: succeeded" in done.stdout
    assert "operator console at http://127.0.0.1:" in done.stdout
    if redis == "private":
        assert "started a private redis-server" in done.stdout
