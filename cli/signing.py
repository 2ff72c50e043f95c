"""Signing a webhook as each platform does, for `sluice send`, the demo and the benchmarks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime


def sign_headers(scheme: str, secret: str, body: bytes, now: float, msg_id: str | None = None) -> dict[str, str]:
    """The signing headers of `scheme` for `body`, signed with `secret` at Unix time `now`."""
    ts = str(int(now))
    if scheme == "standard-webhooks":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        return {"webhook-id": msg_id, "webhook-timestamp": ts,
                "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    if scheme == "stripe":
        mac_hex = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={ts},v1={mac_hex}"}
    if scheme == "shopify":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        triggered = datetime.fromtimestamp(int(now), UTC).isoformat().replace("+00:00", "Z")
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(), "X-Shopify-Triggered-At": triggered}
    raise ValueError(f"unknown scheme {scheme!r}")
