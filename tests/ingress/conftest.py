"""Senders that sign like each platform does (the reference `standardwebhooks` library for Standard Webhooks,
HMACs written out by hand for Stripe and Shopify)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import structlog
from standardwebhooks.webhooks import Webhook

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


@pytest.fixture(autouse=True)
def _reset_structlog() -> Any:
    yield
    structlog.reset_defaults()


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
