"""Webhook signature schemes (SPEC section 3): pure verifiers over the raw body bytes, and the matching signers.

A verifier is built once per source from its secrets (keys decoded and HMAC states keyed up front), then
`verify(headers, body, now)` either returns or raises VerificationError; nothing else escapes, whatever the
headers hold. `headers` is any mapping that answers lower-case header names (Starlette's `Headers` does, and
its values are the wire bytes decoded as latin-1). `now` is Unix seconds, passed in so tests can pin it.
Every comparison is `hmac.compare_digest`; any of the source's secrets may have signed, and any of several
signatures in a header may match.

The signers (`sign_standard`, `sign_stripe`, `sign_shopify`) make the headers a sender would, for the CLI's
`sluice send` and for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from core.errors import ConfigError, VerificationError

__all__ = [
    "SCHEMES", "ShopifyVerifier", "StandardWebhooksVerifier", "StripeVerifier", "Verifier", "build_verifier",
    "sign_shopify", "sign_standard", "sign_stripe", "standard_key",
]

SCHEMES = ("standard-webhooks", "stripe", "shopify")

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_ISO_8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


class Verifier(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Return if the request is signed by one of the secrets within the tolerance, else VerificationError."""


def _raw(value: str) -> bytes:
    """A header value as the bytes that were signed (servers decode header bytes as latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise VerificationError(f"missing header {name}")
    return value


def _unix_seconds(value: str, now: float, tolerance: float) -> None:
    if not _UNIX_SECONDS.fullmatch(value):
        raise VerificationError("timestamp is not Unix seconds")
    _within(float(value), now, tolerance)


def _within(ts: float, now: float, tolerance: float) -> None:
    if abs(now - ts) > tolerance:
        raise VerificationError("timestamp outside tolerance")


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


class _HmacVerifier:
    """HMAC-SHA256 with each key, in one call each: `hmac.digest` runs wholly in OpenSSL, where a copied
    `hmac.new` state and an `update` per part cost several Python calls per request."""

    def __init__(self, keys: Iterable[bytes], tolerance: float) -> None:
        self._keys = tuple(keys)
        if not self._keys:
            raise ValueError("a verifier needs at least one key")
        self.tolerance = tolerance

    def _digests(self, *parts: bytes) -> list[bytes]:
        message = b"".join(parts)
        return [hmac.digest(key, message, "sha256") for key in self._keys]


def _any_match(expected: Sequence[bytes], candidates: Iterable[bytes]) -> bool:
    found = False
    for candidate in candidates:
        for digest in expected:
            # no early exit: the time taken does not depend on which secret or signature matched
            found |= hmac.compare_digest(digest, candidate)
    return found


# ---- Standard Webhooks -----------------------------------------------------------------------------------


def standard_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret, decoded exactly as the reference `standardwebhooks` library does."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "==")
    except (binascii.Error, ValueError):
        raise ValueError("the secret is not base64 after whsec_") from None
    if not key:
        raise ValueError("the secret decodes to no bytes")
    return key


class StandardWebhooksVerifier(_HmacVerifier):
    """`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> [v1,<b64> ...]` over `{id}.{ts}.{body}`."""

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        msg_id = _required(headers, "webhook-id")
        timestamp = _required(headers, "webhook-timestamp")
        signature = _required(headers, "webhook-signature")
        _unix_seconds(timestamp, now, self.tolerance)
        candidates = []
        for token in signature.split():
            version, _, encoded = token.partition(",")
            decoded = _b64(encoded) if version == "v1" else None
            if decoded is not None:
                candidates.append(decoded)
        if not candidates:
            raise VerificationError("no v1 signature in webhook-signature")
        if not _any_match(self._digests(_raw(msg_id), b".", timestamp.encode(), b".", body), candidates):
            raise VerificationError("no signature matched")


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for a body."""
    mac = hmac.new(standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


# ---- Stripe ----------------------------------------------------------------------------------------------


class StripeVerifier(_HmacVerifier):
    """`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` over `{t}.{body}`, secrets used as UTF-8 bytes."""

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        header = _required(headers, "stripe-signature")
        timestamp = None
        candidates = []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                continue
            if key == "t" and timestamp is None:
                timestamp = value
            elif key == "v1":
                candidates.append(_raw(value.lower()))
        if timestamp is None:
            raise VerificationError("no t= in stripe-signature")
        if not candidates:
            raise VerificationError("no v1= in stripe-signature")
        _unix_seconds(timestamp, now, self.tolerance)
        expected = [d.hex().encode() for d in self._digests(timestamp.encode(), b".", body)]
        if not _any_match(expected, candidates):
            raise VerificationError("no signature matched")


def sign_stripe(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={timestamp},v1={mac}"}


# ---- Shopify ---------------------------------------------------------------------------------------------


def _iso_8601(value: str) -> float:
    """Unix seconds of an ISO 8601 time as Shopify sends it (UTC when no offset); ValueError if it is not one."""
    m = _ISO_8601.fullmatch(value.strip())
    if m is None:
        raise ValueError(value)
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    fraction = float("0." + m.group(7)) if m.group(7) else 0.0
    ts = datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() + fraction
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        ts -= offset if m.group(9) == "+" else -offset
    return ts


class ShopifyVerifier(_HmacVerifier):
    """`X-Shopify-Hmac-Sha256` = base64 HMAC of the body; `X-Shopify-Triggered-At`, when sent, within tolerance."""

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        signature = _b64(_required(headers, "x-shopify-hmac-sha256").strip())
        if signature is None:
            raise VerificationError("x-shopify-hmac-sha256 is not base64")
        triggered_at = headers.get("x-shopify-triggered-at")
        if triggered_at is not None:
            try:
                ts = _iso_8601(triggered_at)
            except (ValueError, OverflowError):
                raise VerificationError("x-shopify-triggered-at is not an ISO 8601 time") from None
            _within(ts, now, self.tolerance)
        if not _any_match(self._digests(body), [signature]):
            raise VerificationError("no signature matched")


def sign_shopify(secret: str, body: bytes, triggered_at: str | None = None) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    headers = {"x-shopify-hmac-sha256": base64.b64encode(mac).decode()}
    if triggered_at is not None:
        headers["x-shopify-triggered-at"] = triggered_at
    return headers


# ---- building --------------------------------------------------------------------------------------------


def build_verifier(scheme: str, secrets: Sequence[str], tolerance: float, *, key: str = "secrets") -> Verifier:
    """The verifier of one source; ConfigError (naming `key`) when a secret cannot be used."""
    if not secrets:
        raise ConfigError(key, "at least one secret is required")
    if scheme == "standard-webhooks":
        keys = []
        for i, secret in enumerate(secrets):
            try:
                keys.append(standard_key(secret))
            except ValueError as exc:
                raise ConfigError(f"{key}[{i}]", str(exc)) from None
        return StandardWebhooksVerifier(keys, tolerance)
    if scheme == "stripe":
        return StripeVerifier([s.encode() for s in secrets], tolerance)
    if scheme == "shopify":
        return ShopifyVerifier([s.encode() for s in secrets], tolerance)
    raise ConfigError(key, f"unknown signature scheme {scheme!r}")
