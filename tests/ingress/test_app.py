"""The ingress app around the webhook route: health, readiness, JSON for unknown routes, Redis refusing
writes, the factory uvicorn runs, and the seams later routes plug into."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from config.settings import Settings
from core.clock import FrozenClock
import ingress.app
from ingress.app import create_app
from ingress.state import IngressState
from tests.ingress.conftest import SOURCES, dumps, sample_event, serve, signed
from tests.support.redis_server import RedisServer, free_port

BODY = dumps(sample_event())


async def test_healthz_and_readyz_up(client: httpx.AsyncClient) -> None:
    """With Redis answering, both are 200."""
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_down_while_healthz_up(make_settings: Callable[..., Settings], clock: FrozenClock) -> None:
    """With nothing listening where Redis should be, the process is alive (200) but not ready (503)."""
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(create_app(settings, clock=clock)) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"error": "unavailable"})


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    """Starlette's own 404 and 405 come back as JSON error codes."""
    response = await client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"error": "not_found"})
    response = await client.get("/webhooks/shopfront")
    assert (response.status_code, response.json()) == (405, {"error": "method_not_allowed"})
    assert response.headers["allow"] == "POST"
    response = await client.post("/webhooks/")
    assert (response.status_code, response.json()) == (404, {"error": "not_found"})


async def test_a_trailing_slash_is_an_unknown_route_not_a_redirect(client: httpx.AsyncClient) -> None:
    """No redirects on this API (Starlette would build one from the request's Host header)."""
    for method, path in (("POST", "/webhooks/shopfront/"), ("GET", "/healthz/"), ("GET", "/admin/dead-letters/")):
        response = await client.request(method, path, headers={"host": "evil.example"})
        assert (response.status_code, response.json()) == (404, {"error": "not_found"}), path
        assert "location" not in response.headers


@pytest.fixture(scope="module")
def refusing_redis() -> Iterator[RedisServer]:
    """A private redis-server, so refusing writes never disturbs the shared one."""
    with RedisServer() as server:
        yield server


REFUSALS = {
    "NOREPLICAS": ({"min-replicas-to-write": "1"}, {"min-replicas-to-write": "0"}),
    "OOM": ({"maxmemory": "1", "maxmemory-policy": "noeviction"}, {"maxmemory": "0"}),
}


@pytest.mark.parametrize("how", [*REFUSALS, "READONLY"])
@pytest.mark.parametrize("source", SOURCES)
async def test_redis_refusing_writes_is_503(how: str, source: str, refusing_redis: RedisServer,
                                            make_settings: Callable[..., Settings], clock: FrozenClock) -> None:
    """A Redis that answers but refuses the write (no replicas, out of memory, read-only replica) is 503,
    and nothing at all is stored."""
    admin = aredis.Redis.from_url(refusing_redis.url)
    await admin.flushall()
    try:
        await _refuse_and_post(how, source, admin, refusing_redis, make_settings, clock)
        assert await admin.dbsize() == 0
    finally:
        await admin.aclose()


async def _refuse_and_post(how: str, source: str, admin: aredis.Redis, server: RedisServer,
                           make_settings: Callable[..., Settings], clock: FrozenClock) -> None:
    try:
        if how == "READONLY":
            await admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        else:
            for key, value in REFUSALS[how][0].items():
                await admin.config_set(key, value)
        settings = make_settings(redis_url=server.url)
        async with serve(create_app(settings, clock=clock)) as client:
            response = await client.post(f"/webhooks/{source}", content=BODY, headers=signed(source, BODY, clock()))
            ready = await client.get("/readyz")
        assert (response.status_code, response.json()) == (503, {"error": "unavailable"})
        assert ready.status_code == 200  # it answers; it only refuses writes
    finally:
        if how == "READONLY":
            await admin.execute_command("REPLICAOF", "NO", "ONE")
        else:
            for key, value in REFUSALS[how][1].items():
                await admin.config_set(key, value)


async def test_injected_redis_is_used_and_left_open(settings: Settings, clock: FrozenClock,
                                                    redis_client: aredis.Redis) -> None:
    """A client passed to create_app is the one used, and it is not closed at shutdown."""
    async with serve(create_app(settings, clock=clock, redis=redis_client)) as client:
        assert (await client.post("/webhooks/shopfront", content=BODY,
                                  headers=signed("shopfront", BODY, clock()))).status_code == 202
    assert await redis_client.ping()


async def test_extra_routes_and_resources(settings: Settings, clock: FrozenClock) -> None:
    """Later modules add routes, and lifespan-built state of their own, next to the ingress state."""
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def widget(state: IngressState) -> AsyncIterator[dict[str, Any]]:
        events.append("open")
        yield {"widget": f"widget for {state.keys.namespace}"}
        events.append("close")

    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.widget)

    app = create_app(settings, clock=clock, extra_routes=[Route("/widget", show)], resources=[widget])
    async with serve(app) as client:
        response = await client.get("/widget")
        assert (await client.get("/healthz")).status_code == 200
    assert response.text == f"widget for {settings.namespace}"
    assert events == ["open", "close"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_factory_reads_the_config_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                             namespace: str, restore_logging: None) -> None:
    """`create_app()` with no arguments (uvicorn --factory) loads SLUICE_CONFIG and serves it."""
    config = tmp_path / "sluice.toml"
    config.write_text(
        f'redis_url = "{redis_url}"\nnamespace = "{namespace}"\n'
        '[sources.shopfront]\nscheme = "standard-webhooks"\nsecrets = ["${SHOPFRONT_SECRET}"]\n'
    )
    from tests.conftest import SECRET

    monkeypatch.setenv("SLUICE_CONFIG", str(config))
    monkeypatch.setenv("SHOPFRONT_SECRET", SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    frozen: list[bool] = []
    monkeypatch.setattr(ingress.app, "freeze_startup_heap", lambda: frozen.append(True))
    async with serve(create_app()) as client:
        response = await client.get("/readyz")
        unknown = await client.post("/webhooks/stripey", content=BODY, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert unknown.status_code == 404
    assert frozen == [True]  # the web process takes its start-up heap out of the collector's sight


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), ('[sources.x]\nscheme = "standard-webhooks"\nsecrets = ["whsec_"]\n',
                           "sources.x.secrets[0]")],
)
def test_factory_exits_with_one_line_on_a_bad_config(
    content: str | None, message: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], restore_logging: None,
) -> None:
    """A missing file or an unusable secret stops startup with one line naming the key, exit status 2."""
    config = tmp_path / "sluice.toml"
    if content is not None:
        config.write_text(content)
    monkeypatch.setenv("SLUICE_CONFIG", str(config))
    with pytest.raises(SystemExit) as info:
        create_app()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
