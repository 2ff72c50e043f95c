"""Fixtures for the ingress: a frozen clock, the app served in-process with its lifespan run over the real ASGI
lifespan protocol, and senders that sign like each platform does (the reference `standardwebhooks` library for
Standard Webhooks, HMACs written out by hand for Stripe and Shopify)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import structlog
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings
from core.clock import FrozenClock
from ingress.app import create_app
from tests.conftest import SECRET

STRIPE_SECRETS = ("stripe-secret-one", "stripe-secret-two")
SHOPIFY_SECRET = "shopify-secret-one"
SOURCES = ("shopfront", "stripey", "shopify")


def sample_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "evt_01J9Z6",
        "type": "purchase",
        "occurred_at": "2026-11-24T10:00:00Z",
        "contact": {"id": "cus_42", "email": "ada@example.com", "phone": "+4400114527199"},
        "data": {"order": {"id": "ord_1", "amount_cents": 4500, "paid_cents": 4500, "currency": "EUR",
                           "created_at": "2026-11-24T10:00:00Z", "refunded": False,
                           "items": [{"product_id": "p1", "name": "Tuit", "quantity": 1, "amount_cents": 4500}]}},
    }
    event.update(changes)
    return event


def standard_headers(body: bytes, ts: float, *, secret: str = SECRET, msg_id: str = "msg_1") -> dict[str, str]:
    stamp = datetime.fromtimestamp(ts, tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=body.decode())
    except UnicodeDecodeError:  # the reference signs text only; sign other bytes by hand, the same way
        mac = hmac.new(Webhook(secret)._whsecret, f"{msg_id}.{int(ts)}.".encode() + body, hashlib.sha256)
        signature = "v1," + base64.b64encode(mac.digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(ts)), "webhook-signature": signature}


def stripe_headers(body: bytes, ts: float, *, secret: str = STRIPE_SECRETS[0]) -> dict[str, str]:
    t = int(ts)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}


def shopify_headers(body: bytes, ts: float | None = None, *, secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Hmac-Sha256": mac}
    if ts is not None:
        headers["X-Shopify-Triggered-At"] = datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")
    return headers


SIGNERS: dict[str, Callable[[bytes, float], dict[str, str]]] = {
    "shopfront": standard_headers,
    "stripey": stripe_headers,
    "shopify": shopify_headers,
}


def signed(source: str, body: bytes, ts: float) -> dict[str, str]:
    return {"content-type": "application/json", **SIGNERS[source](body, ts)}


class Lifespan:
    """Runs an ASGI app's lifespan the way uvicorn does, and serves requests with the state it yields."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        assert message["type"] == "lifespan.startup.complete", message
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._from_app.get()
        assert message["type"] == "lifespan.shutdown.complete", message
        assert self._task is not None
        await self._task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "state": dict(self.state)}, receive, send)


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with Lifespan(app) as served:
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
            yield client


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def client(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings, clock=clock)) as c:
        yield c


@pytest.fixture(autouse=True)
def _reset_structlog() -> Any:
    yield
    structlog.reset_defaults()


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
