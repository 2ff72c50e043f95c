"""The shared client machinery: classification, Retry-After, the time budget, secrets, the registry."""

from __future__ import annotations

import email.utils
import importlib.metadata
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from config.settings import Settings
from core.errors import BODY_LIMIT, PermanentError, TransientError
from core.routing import OPERATIONS
from handlers.base import (
    Call,
    Deadline,
    VendorClient,
    classify,
    classify_exception,
    parse_retry_after,
    scrub,
    user_agent,
)
from handlers.registry import Vendors, build_http_client
from handlers.transport import VendorTransport
from tests.handlers import samples
from tests.handlers.conftest import KEY

NOW = 1_795_000_000.0


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"
) -> httpx.Response:
    request = httpx.Request(method, "https://vendor.example/api/v1/thing?api_token=t0ken")
    return httpx.Response(status, content=body, headers=headers, request=request)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_done(status: int) -> None:
    assert classify(response(status), vendor="v", now=NOW) is True


@pytest.mark.parametrize("status", [408, 425, 429, 500, 501, 502, 503, 504, 599])
def test_transient_classes(status: int) -> None:
    with pytest.raises(TransientError) as caught:
        classify(response(status, b"busy"), vendor="v", now=NOW)
    assert caught.value.status == status and caught.value.body == "busy"


@pytest.mark.parametrize("status", [300, 301, 304, 400, 401, 402, 403, 404, 405, 406, 409, 410, 413, 422, 451])
def test_permanent_classes(status: int) -> None:
    with pytest.raises(PermanentError) as caught:
        classify(response(status), vendor="v", now=NOW)
    assert caught.value.status == status


def test_404_on_a_delete_is_absent_not_an_error() -> None:
    assert classify(response(404, method="DELETE"), vendor="v", now=NOW, missing_ok=True) is False
    with pytest.raises(PermanentError):  # only 404 is "absent"
        classify(response(410, method="DELETE"), vendor="v", now=NOW, missing_ok=True)


def test_message_names_vendor_status_and_path_but_never_the_query() -> None:
    with pytest.raises(PermanentError) as caught:
        classify(response(400), vendor="acme", now=NOW)
    assert caught.value.message == "acme answered 400 to POST /api/v1/thing"
    assert "t0ken" not in caught.value.message


def test_binary_error_body_is_text() -> None:
    with pytest.raises(TransientError) as caught:
        classify(response(500, b"\xff\xfe\x00oops" + b"x" * 5000), vendor="v", now=NOW)
    assert isinstance(caught.value.body, str) and len(caught.value.body) <= BODY_LIMIT
    assert caught.value.body.startswith("\ufffd\ufffd\x00oops")


def test_a_broken_detail_reader_never_hides_the_status() -> None:
    def detail(_: str) -> str:
        raise RuntimeError("bug")

    with pytest.raises(PermanentError) as caught:
        classify(response(422, b"{}"), vendor="v", now=NOW, detail=detail)
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_reaches_the_error() -> None:
    with pytest.raises(TransientError) as caught:
        classify(response(429, headers={"Retry-After": "30"}), vendor="v", now=NOW)
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), TransientError),
        (httpx.ConnectTimeout("slow"), TransientError),
        (httpx.ReadTimeout("slow"), TransientError),
        (httpx.PoolTimeout("busy"), TransientError),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), TransientError),
        (httpx.ReadError("reset"), TransientError),
        (httpx.WriteError("broken pipe"), TransientError),
        (httpx.UnsupportedProtocol("ftp"), PermanentError),
        (httpx.DecodingError("bad gzip"), PermanentError),
    ],
)
def test_transport_failures(exc: httpx.HTTPError, kind: type) -> None:
    error = classify_exception(exc, vendor="v", method="POST", path="/x")
    assert type(error) is kind and error.status is None


async def test_an_invalid_base_url_is_permanent(vendor_settings: Callable[..., Settings], http: Any) -> None:
    vendors = Vendors(vendor_settings(segmetrics={"base_url": "http://[::1/api/v1"}), http)
    with pytest.raises(PermanentError, match="cannot be sent"):
        await vendors.perform("segmetrics", "upsert_contact", samples.signup(), idempotency_key=KEY, timeout=1)


def test_secrets_are_scrubbed_before_the_body_is_cut() -> None:
    secret = "s3cret-value"
    body = ("x" * (BODY_LIMIT - 4) + secret).encode()
    with pytest.raises(PermanentError) as caught:
        classify(response(400, body), vendor="v", now=NOW, secrets=[secret])
    assert "s3cr" not in caught.value.body and caught.value.body.endswith("[red")


def test_scrub() -> None:
    assert scrub("key=abc and abc again", ["abc", ""]) == "key=[redacted] and [redacted] again"


async def test_a_spent_budget_sends_nothing() -> None:
    sent: list[httpx.Request] = []
    ticks = iter([0.0, 5.0])
    deadline = Deadline(1.0, monotonic=lambda: next(ticks))
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    async with transport as http:
        client = VendorClient(http, "http://vendor.example")
        with pytest.raises(TransientError, match="time budget"):
            await client.send(Call(KEY, deadline), "GET", "/x")
    assert sent == []


async def test_truncated_body_on_the_wire_is_transient() -> None:
    """A body cut short by the connection (fewer bytes than Content-Length) is a network failure."""

    class Truncated(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'{"status":"succ'
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "100"}, stream=Truncated())

    async with httpx.MockTransport(answer) as http:
        client = VendorClient(http, "http://vendor.example")
        with pytest.raises(TransientError, match="RemoteProtocolError"):
            await client.send(Call(KEY, Deadline(2)), "POST", "/x", json={})


def test_user_agent() -> None:
    assert user_agent() == f"sluice/{importlib.metadata.version('sluice')}"


async def test_build_http_client(vendor_settings: Callable[..., Settings]) -> None:
    settings = vendor_settings()
    async with build_http_client(settings) as transport:
        assert isinstance(transport, VendorTransport)
        assert transport.limits.max_connections == settings.worker.max_jobs * 3


# -- registry -------------------------------------------------------------------------------------------


def test_every_operation_has_a_method(vendors: Vendors) -> None:
    for vendor, operations in OPERATIONS.items():
        client = vendors._clients[vendor]
        for operation in operations:
            assert callable(getattr(client, operation)), f"{vendor}.{operation}"
            assert vendors.is_configured(vendor, operation)


def test_a_vendor_without_a_table_is_not_configured(make_vendors: Callable[..., Vendors]) -> None:
    vendors = make_vendors(segmetrics=None, infinity=None)
    assert not vendors.is_configured("segmetrics", "upsert_contact")
    assert not vendors.is_configured("infinity", "upsert_segment")
    assert vendors.is_configured("personaclick", "add_to_segment")
    assert not vendors.is_configured("nobody", "anything")


async def test_perform_refuses_what_it_cannot_do(make_vendors: Callable[..., Vendors]) -> None:
    vendors = make_vendors(segmetrics=None)
    with pytest.raises(PermanentError, match="not configured"):
        await vendors.perform("segmetrics", "upsert_contact", samples.signup(), idempotency_key=KEY, timeout=1)
    with pytest.raises(PermanentError, match="unknown operation"):
        await vendors.perform("salesmachine", "__init__", samples.signup(), idempotency_key=KEY, timeout=1)


@pytest.mark.parametrize(
    ("vendor", "operation", "event"),
    [
        ("segmetrics", "upsert_invoice", samples.signup()),
        ("segmetrics", "delete_subscription", samples.signup()),
        ("salesmachine", "upsert_account", samples.ad_performance()),
        ("personaclick", "add_to_segment", samples.signup()),
        ("infinity", "upsert_segment", samples.signup()),
        ("infinity", "ensure_segment_group", samples.segment_delete()),
        ("segmetrics", "upsert_contact", {"type": "signup", "contact": {"id": "c"}, "occurred_at": 12}),
    ],
)
async def test_an_event_that_does_not_fit_is_permanent(
    vendors: Vendors, vendor: str, operation: str, event: dict
) -> None:
    """A `[routes]` override can send any event to any operation: it is a dead letter, never a crash."""
    with pytest.raises(PermanentError):
        await vendors.perform(vendor, operation, event, idempotency_key=KEY, timeout=1)


async def test_every_request_carries_the_key_and_user_agent(vendors: Vendors, sandbox: Any) -> None:
    ops = [
        ("segmetrics", "upsert_contact", samples.signup()),
        ("segmetrics", "delete_invoice", samples.purchase()),
        ("salesmachine", "track_event", samples.signup()),
        ("salesmachine", "delete_contact", samples.contact_delete()),
        ("personaclick", "list_segments", samples.signup()),
        ("personaclick", "purge_profile", samples.contact_delete()),
        ("infinity", "upsert_segment", samples.segment_upsert()),
        ("infinity", "order_segments", samples.segment_upsert()),
    ]
    for n, (vendor, operation, event) in enumerate(ops):
        await vendors.perform(vendor, operation, event, idempotency_key=f"{KEY}-{n}", timeout=2)
    requests = sandbox.state.requests
    assert {r.vendor for r in requests} == set(OPERATIONS)
    for r in requests:
        assert r.headers["user-agent"] == user_agent(), r.path
        assert r.idempotency_key is not None and r.idempotency_key.startswith(KEY), r.path
