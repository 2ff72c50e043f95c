"""`sluice send` against a real ingress (uvicorn on loopback): every type, every scheme, answered 202."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from cli.main import app
from core.routing import EVENT_TYPES
from ingress.app import create_app
from tests.conftest import base_config
from tests.support.fleet import write_config
from tests.support.redis_server import free_port

runner = CliRunner()


@pytest.fixture
def ingress(make_settings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(make_settings()), host="127.0.0.1", port=port,
                                           log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "ingress did not start"
        thread.join(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    return {"SLUICE_CONFIG": str(write_config(tmp_path / "sluice.toml", base_config(redis_url, namespace)))}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_send_every_type(ingress, env, event_type) -> None:
    result = runner.invoke(app, ["send", event_type, "--source", "shopfront", "--url", ingress], env=env)
    assert result.exit_code == 0, result.output
    answer = result.stdout.strip().splitlines()[-1]  # the in-process ingress logs to the same stdout
    assert answer.startswith("202 ") and '"status":"queued"' in answer


@pytest.mark.parametrize("source", ["shopfront", "stripey", "shopify"])
def test_send_signs_with_each_scheme(ingress, env, source) -> None:
    result = runner.invoke(app, ["send", "signup", "--source", source, "--url", ingress, "--id", "evt_same"], env=env)
    assert result.exit_code == 0 and result.stdout.strip().splitlines()[-1].startswith("202 "), result.output
    again = runner.invoke(app, ["send", "signup", "--source", source, "--url", ingress, "--id", "evt_same"], env=env)
    last = again.stdout.strip().splitlines()[-1]
    assert again.exit_code == 0 and last.startswith("200 ") and "duplicate" in last
