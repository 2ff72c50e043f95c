"""The signature schemes of SPEC section 3, checked as pure functions with an injected `now`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from starlette.datastructures import Headers

from core.errors import ConfigError, VerificationError
from core.signatures import (
    ShopifyVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    build_verifier,
    sign_shopify,
    sign_standard,
    sign_stripe,
    standard_key,
)
from tests.conftest import SECRET
from tests.ingress.conftest import STRIPE_SECRETS, shopify_headers, standard_headers, stripe_headers

NOW = 1_795_000_000.0
BODY = b'{"id":"evt_1","type":"signup"}'
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()


def standard(*secrets: str) -> StandardWebhooksVerifier:
    return build_verifier("standard-webhooks", list(secrets or [SECRET]), 300)  # type: ignore[return-value]


def stripe(*secrets: str) -> StripeVerifier:
    return build_verifier("stripe", list(secrets or STRIPE_SECRETS), 300)  # type: ignore[return-value]


def shopify(*secrets: str) -> ShopifyVerifier:
    return build_verifier("shopify", list(secrets or ["shopify-secret-one"]), 300)  # type: ignore[return-value]


def as_received(headers: dict[str, str]) -> Headers:
    """Headers as Starlette hands them over: case-insensitive, the wire bytes (UTF-8 here) decoded as latin-1."""
    return Headers(raw=[(k.lower().encode("latin-1"), v.encode()) for k, v in headers.items()])


class TestStandardWebhooks:
    def test_accepts_what_the_reference_library_signs(self) -> None:
        """A signature made by `standardwebhooks` verifies, and our signer makes the same headers."""
        standard().verify(as_received(standard_headers(BODY, NOW)), BODY, NOW)
        assert sign_standard(SECRET, "msg_1", int(NOW), BODY) == standard_headers(BODY, NOW)

    def test_non_ascii_message_id_as_sent_on_the_wire(self) -> None:
        """A UTF-8 webhook-id, signed by the reference as text, verifies from the bytes the server received."""
        standard().verify(as_received(standard_headers(BODY, NOW, msg_id="msg_\u00e9\u2603")), BODY, NOW)

    @pytest.mark.parametrize("drift", [-300, -1, 0, 1, 300])
    def test_timestamp_within_tolerance(self, drift: int) -> None:
        """Up to the tolerance either side of now is accepted."""
        standard().verify(as_received(standard_headers(BODY, NOW + drift)), BODY, NOW)

    @pytest.mark.parametrize("drift", [-301, 301, -86_400, 10**6])
    def test_stale_and_future_timestamps(self, drift: int) -> None:
        """Beyond the tolerance, past or future, is refused even with a right signature."""
        with pytest.raises(VerificationError, match="tolerance"):
            standard().verify(as_received(standard_headers(BODY, NOW + drift)), BODY, NOW)

    def test_any_secret_of_a_rotation(self) -> None:
        """During a rotation either the old or the new secret may sign."""
        verifier = standard(OTHER_SECRET, SECRET)
        verifier.verify(as_received(standard_headers(BODY, NOW, secret=SECRET)), BODY, NOW)
        verifier.verify(as_received(standard_headers(BODY, NOW, secret=OTHER_SECRET)), BODY, NOW)
        with pytest.raises(VerificationError):
            standard(OTHER_SECRET).verify(as_received(standard_headers(BODY, NOW)), BODY, NOW)

    def test_several_signatures_one_valid(self) -> None:
        """A header may carry several signatures; one valid v1 is enough, others of any shape are skipped."""
        good = standard_headers(BODY, NOW)
        wrong = standard_headers(BODY, NOW, secret=OTHER_SECRET)["webhook-signature"]
        for signature in (f"{wrong} {good['webhook-signature']}", f"v1a,abc {good['webhook-signature']}",
                          f"junk v1,!!! {good['webhook-signature']}  "):
            standard().verify(as_received({**good, "webhook-signature": signature}), BODY, NOW)

    def test_body_and_headers_are_all_signed(self) -> None:
        """Changing the body, the id or the timestamp breaks the signature."""
        good = standard_headers(BODY, NOW)
        for headers, body in [(good, BODY + b" "), ({**good, "webhook-id": "msg_2"}, BODY),
                              ({**good, "webhook-timestamp": str(int(NOW) + 1)}, BODY)]:
            with pytest.raises(VerificationError, match="no signature matched"):
                standard().verify(as_received(headers), body, NOW)

    def test_unpadded_and_prefixless_secrets_decode_like_the_reference(self) -> None:
        """Keys are decoded the way `standardwebhooks.Webhook` decodes them."""
        raw = SECRET.removeprefix("whsec_")
        assert standard_key(SECRET) == standard_key(raw) == standard_key(SECRET.rstrip("="))
        assert standard_key(SECRET) == Webhook(SECRET)._whsecret

    @pytest.mark.parametrize(
        "change",
        [
            {"webhook-signature": None},
            {"webhook-id": None},
            {"webhook-timestamp": None},
            {"webhook-signature": ""},
            {"webhook-signature": "v1"},
            {"webhook-signature": "v1,"},
            {"webhook-signature": "v1,not base64!"},
            {"webhook-signature": "v1,c2lnbmF0dXJl"},
            {"webhook-signature": "v2,c2lnbmF0dXJl"},
            {"webhook-signature": ",,,"},
            {"webhook-signature": "v1,\u00e9\u00e8=="},
            {"webhook-timestamp": "soon"},
            {"webhook-timestamp": ""},
            {"webhook-timestamp": "1795000000.5"},
            {"webhook-timestamp": "-1795000000"},
            {"webhook-timestamp": "\u0661\u0667\u0669\u0665"},
            {"webhook-timestamp": "1" * 40},
            {"webhook-id": "\u00ff\u00fe"},
        ],
    )
    def test_malformed_headers(self, change: dict[str, Any]) -> None:
        """Every malformed signing header is a VerificationError, never another exception."""
        headers: dict[str, str] = standard_headers(BODY, NOW)
        for key, value in change.items():
            if value is None:
                del headers[key]
            else:
                headers[key] = value
        with pytest.raises(VerificationError):
            standard().verify(as_received(headers), BODY, NOW)


def stripe_header(ts: int, *signatures: str) -> dict[str, str]:
    return {"stripe-signature": ",".join([f"t={ts}", *(f"v1={s}" for s in signatures)])}


def stripe_mac(secret: str, ts: int, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


class TestStripe:
    def test_signed_by_hand(self) -> None:
        """`t=<ts>,v1=<hex HMAC of "{t}.{body}">` verifies; our signer makes the same header."""
        stripe().verify(as_received(stripe_headers(BODY, NOW)), BODY, NOW)
        assert sign_stripe(STRIPE_SECRETS[0], int(NOW), BODY) == {
            k.lower(): v for k, v in stripe_headers(BODY, NOW).items()
        }

    @pytest.mark.parametrize("secret", STRIPE_SECRETS)
    def test_either_secret(self, secret: str) -> None:
        """Both secrets of the rotation are accepted."""
        stripe().verify(as_received(stripe_headers(BODY, NOW, secret=secret)), BODY, NOW)

    def test_several_v1_one_valid(self) -> None:
        """Stripe sends one v1 per active secret during a rotation; one match is enough; v0 is ignored."""
        ts = int(NOW)
        header = stripe_header(ts, stripe_mac("rolled-away", ts), stripe_mac(STRIPE_SECRETS[1], ts))
        header["stripe-signature"] += ",v0=deadbeef"
        stripe().verify(as_received(header), BODY, NOW)

    def test_uppercase_hex_and_spaces(self) -> None:
        """Hex case and spaces after commas do not matter."""
        ts = int(NOW)
        header = {"stripe-signature": f"t={ts}, v1={stripe_mac(STRIPE_SECRETS[0], ts).upper()}"}
        stripe().verify(as_received(header), BODY, NOW)

    @pytest.mark.parametrize("drift", [-301, 301])
    def test_stale_and_future(self, drift: int) -> None:
        """The signed `t` is held to the tolerance."""
        with pytest.raises(VerificationError, match="tolerance"):
            stripe().verify(as_received(stripe_headers(BODY, NOW + drift)), BODY, NOW)

    def test_t_is_signed(self) -> None:
        """Moving `t` while keeping the signature fails."""
        ts = int(NOW)
        with pytest.raises(VerificationError):
            stripe().verify(as_received(stripe_header(ts + 1, stripe_mac(STRIPE_SECRETS[0], ts))), BODY, NOW)

    @pytest.mark.parametrize(
        "header",
        ["", "garbage", "t=1795000000", "v1=abc", f"t=soon,v1={'0' * 64}", "t=,v1=", "t=1795000000,v1=",
         "t=1795000000,v1=zz", "t=1795000000,v1=\u00e9\u00e9", ",,,", "t1795000000v1abc", "=,=,=",
         "t=1795000000;v1=abc", f"t=\u0661\u0667,v1={'0' * 64}"],
    )
    def test_malformed_headers(self, header: str) -> None:
        """Every malformed Stripe-Signature is a VerificationError."""
        with pytest.raises(VerificationError):
            stripe().verify(as_received({"stripe-signature": header}), BODY, NOW)

    def test_missing_header(self) -> None:
        with pytest.raises(VerificationError, match="missing"):
            stripe().verify(as_received({}), BODY, NOW)


class TestShopify:
    def test_signed_by_hand(self) -> None:
        """Base64 HMAC of the body verifies, with or without X-Shopify-Triggered-At."""
        shopify().verify(as_received(shopify_headers(BODY)), BODY, NOW)
        shopify().verify(as_received(shopify_headers(BODY, NOW)), BODY, NOW)
        assert sign_shopify("shopify-secret-one", BODY) == {
            k.lower(): v for k, v in shopify_headers(BODY).items()
        }

    def test_any_secret(self) -> None:
        verifier = shopify("old", "shopify-secret-one")
        verifier.verify(as_received(shopify_headers(BODY)), BODY, NOW)
        verifier.verify(as_received(shopify_headers(BODY, secret="old")), BODY, NOW)

    @pytest.mark.parametrize(
        "triggered_at",
        ["2026-11-18T11:06:40Z", "2026-11-18T11:06:40.877041743Z", "2026-11-18T11:06:40+00:00",
         "2026-11-18T12:06:40+01:00", "2026-11-18T11:06:40", "2026-11-18T11:01:40.5Z", "2026-11-18 11:06:40Z"],
    )
    def test_triggered_at_within_tolerance(self, triggered_at: str) -> None:
        """Shopify's ISO 8601 forms near now are accepted (NOW is 2026-11-18T11:06:40Z)."""
        assert datetime.fromtimestamp(NOW, UTC).isoformat() == "2026-11-18T11:06:40+00:00"
        headers = {**shopify_headers(BODY), "x-shopify-triggered-at": triggered_at}
        shopify().verify(as_received(headers), BODY, NOW)

    @pytest.mark.parametrize("drift", [-301, 301, -86_400])
    def test_stale_and_future_triggered_at(self, drift: int) -> None:
        with pytest.raises(VerificationError, match="tolerance"):
            shopify().verify(as_received(shopify_headers(BODY, NOW + drift)), BODY, NOW)

    @pytest.mark.parametrize(
        "headers",
        [{}, {"x-shopify-hmac-sha256": ""}, {"x-shopify-hmac-sha256": "not base64!"},
         {"x-shopify-hmac-sha256": "\u00e9\u00e9\u00e9\u00e9"}, {"x-shopify-hmac-sha256": "c2lnbmF0dXJl"},
         {"x-shopify-triggered-at": "yesterday"}, {"x-shopify-triggered-at": ""},
         {"x-shopify-triggered-at": "2026-13-45T99:99:99Z"}, {"x-shopify-triggered-at": "99999-01-01T00:00:00Z"},
         {"x-shopify-triggered-at": "1795000000"}],
    )
    def test_malformed_headers(self, headers: dict[str, str]) -> None:
        """A missing, empty or undecodable HMAC, or an unreadable Triggered-At, is a VerificationError."""
        base = shopify_headers(BODY) if "x-shopify-hmac-sha256" not in headers and headers else {}
        with pytest.raises(VerificationError):
            shopify().verify(as_received({**base, **headers}), BODY, NOW)


class TestBuild:
    def test_bad_standard_secret_names_the_key(self) -> None:
        """A whsec_ secret that decodes to nothing is a config error naming the secret's position."""
        with pytest.raises(ConfigError) as info:
            build_verifier("standard-webhooks", [SECRET, "whsec_"], 300, key="sources.x.secrets")
        assert info.value.key == "sources.x.secrets[1]"

    def test_unknown_scheme_and_no_secret(self) -> None:
        with pytest.raises(ConfigError):
            build_verifier("hmac-md5", ["s"], 300)
        with pytest.raises(ConfigError):
            build_verifier("stripe", [], 300)


HEADER_NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature", "stripe-signature",
                "x-shopify-hmac-sha256", "x-shopify-triggered-at"]
latin1_text = st.text(st.characters(max_codepoint=255), max_size=80)
header_values = latin1_text | st.builds(lambda parts: ",".join(parts), st.lists(latin1_text, max_size=4)) | (
    st.sampled_from(["v1,", "t=", "v1=", "t=1795000000,v1="]).flatmap(lambda p: latin1_text.map(lambda t: p + t))
)


@settings(max_examples=300, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values), body=st.binary(max_size=64),
       scheme=st.sampled_from(["standard-webhooks", "stripe", "shopify"]))
def test_random_headers_only_ever_raise_verification_error(headers: dict[str, str], body: bytes, scheme: str) -> None:
    """Whatever the signing headers hold, verification answers or raises VerificationError, nothing else."""
    secrets = [SECRET] if scheme == "standard-webhooks" else ["s1", "s2"]
    try:
        build_verifier(scheme, secrets, 300).verify(as_received(headers), body, NOW)
    except VerificationError:
        pass
