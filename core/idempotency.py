"""The idempotency key of a vendor call (SPEC section 5, rule 2)."""

from __future__ import annotations

import hashlib


def idempotency_key(source: str, event_id: str, vendor: str, operation: str) -> str:
    digest = hashlib.sha256(f"{source}:{event_id}:{vendor}:{operation}".encode()).hexdigest()
    return f"sluice-{digest}"
