"""Property tests over HTTP: random bytes, random headers and random JSON bodies never get a 5xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from core.clock import FrozenClock
from ingress.app import create_app
from tests.ingress.conftest import SIGNERS, SOURCES, sample_event, serve

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPECTED = {200, 202, 400, 401, 404, 413, 415}

SIGNING_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature", "stripe-signature",
                   "x-shopify-hmac-sha256", "x-shopify-triggered-at", "content-type", "content-length"]
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60) | st.sampled_from(
    ["", "v1,", "v1,AAAA", "t=1795000000,v1=", "application/json", "99999999999", "-1", "1795000000"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


class SyncClient:
    """The served app driven from synchronous hypothesis tests, on an event loop of its own."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(url, **kwargs))


@pytest.fixture
def sync_client(make_settings: Any, clock: FrozenClock) -> Iterator[SyncClient]:
    settings: Settings = make_settings(ingress={"max_body_bytes": 512, "tolerance_seconds": 300})
    loop = asyncio.new_event_loop()
    served = serve(create_app(settings, clock=clock))
    try:
        yield SyncClient(loop.run_until_complete(served.__aenter__()), loop)
        loop.run_until_complete(served.__aexit__(None, None, None))
    finally:
        loop.close()


def test_random_bytes_and_headers_never_5xx(sync_client: SyncClient, clock: FrozenClock) -> None:
    """Whatever the body bytes and signing headers, the answer is one of the contract's statuses."""

    @PROPERTY
    @given(source=st.sampled_from([*SOURCES, "nobody"]), body=st.binary(max_size=600),
           headers=st.dictionaries(st.sampled_from(SIGNING_HEADERS), header_text, max_size=6),
           content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", None]),
           sign=st.booleans())
    def check(source: str, body: bytes, headers: dict[str, str], content_type: str | None, sign: bool) -> None:
        if content_type is not None:
            headers["content-type"] = content_type
        if sign and source in SIGNERS:
            headers.pop("content-length", None)
            headers.update(SIGNERS[source](body, clock()))
        response = sync_client.post(f"/webhooks/{source}", content=body, headers=headers)
        assert response.status_code in EXPECTED, response.text
        assert "error" in response.json() or response.status_code in {200, 202}

    check()


def test_random_signed_json_never_5xx(sync_client: SyncClient, clock: FrozenClock) -> None:
    """Correctly signed random JSON, and real events with random values, are 2xx or a named 400."""

    @PROPERTY
    @given(source=st.sampled_from(SOURCES), doc=json_values,
           field=st.sampled_from(["id", "type", "occurred_at", "contact", "data", "extra"]), value=json_values,
           raw=st.booleans())
    def check(source: str, doc: Any, field: str, value: Any, raw: bool) -> None:
        event = doc if raw else {**sample_event(), field: value}
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json", **SIGNERS[source](body, clock())}
        response = sync_client.post(f"/webhooks/{source}", content=body, headers=headers)
        assert response.status_code in {200, 202, 400, 413}, response.text
        if response.status_code == 400:
            answer = response.json()
            assert answer["error"] == "invalid_event" and answer["detail"]

    check()
