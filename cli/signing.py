"""Signing a webhook as each platform does, for `sluice send`, the demo and the benchmarks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from core.signatures import sign_shopify, sign_standard, sign_stripe


def sign_headers(scheme: str, secret: str, body: bytes, now: float, msg_id: str | None = None) -> dict[str, str]:
    """The signing headers of `scheme` for `body`, signed with `secret` at Unix time `now`."""
    if scheme == "standard-webhooks":
        return sign_standard(secret, msg_id or f"msg_{uuid.uuid4().hex}", int(now), body)
    if scheme == "stripe":
        return sign_stripe(secret, int(now), body)
    if scheme == "shopify":
        triggered = datetime.fromtimestamp(int(now), UTC).isoformat().replace("+00:00", "Z")
        return sign_shopify(secret, body, triggered)
    raise ValueError(f"unknown scheme {scheme!r}")
