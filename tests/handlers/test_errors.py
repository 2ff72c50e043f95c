"""How every vendor's failures map onto the taxonomy, over real HTTP with the sandbox's fault injection:
status classes, Retry-After, dropped connections, timeouts, unreadable answers, and secrets kept out."""

from __future__ import annotations

import email.utils
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.clock import FrozenClock
from core.errors import BODY_LIMIT, PermanentError, TransientError
from handlers.registry import Vendors
from tests.handlers import samples
from tests.handlers.conftest import KEY
from tests.support.sandbox import SandboxServer

# one representative call per vendor (and per kind of answer: JSON status object, NDJSON, bare array)
CALLS: dict[str, tuple[str, str, Callable[[], dict[str, Any]]]] = {
    "segmetrics": ("segmetrics", "upsert_contact", samples.signup),
    "salesmachine": ("salesmachine", "track_event", samples.signup),
    "salesmachine_v2": ("salesmachine", "list_contacts", samples.signup),
    "personaclick": ("personaclick", "add_to_segment", samples.segment_join),
    "personaclick_list": ("personaclick", "list_segments", samples.signup),
    "infinity": ("infinity", "list_segments", samples.segment_upsert),
}
VENDOR_CALLS = ["segmetrics", "salesmachine", "personaclick", "infinity"]


async def call(vendors: Vendors, name: str, *, timeout: float = 2.0) -> None:
    vendor, operation, make_event = CALLS[name]
    await vendors.perform(vendor, operation, make_event(), idempotency_key=KEY, timeout=timeout)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425, 429])
@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_transient_statuses(vendors: Vendors, sandbox: SandboxServer, name: str, status: int) -> None:
    sandbox.state.inject(CALLS[name][0], status=status)
    with pytest.raises(TransientError) as caught:
        await call(vendors, name)
    assert caught.value.status == status and caught.value.retry_after is None
    assert caught.value.body  # the vendor-shaped error body, as text
    await call(vendors, name)  # the fault is used up: the next try goes through


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 422])
@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_permanent_statuses(vendors: Vendors, sandbox: SandboxServer, name: str, status: int) -> None:
    sandbox.state.inject(CALLS[name][0], status=status)
    with pytest.raises(PermanentError) as caught:
        await call(vendors, name)
    assert caught.value.status == status
    assert caught.value.as_dict()["class"] == "permanent"


@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_retry_after_in_seconds(vendors: Vendors, sandbox: SandboxServer, name: str) -> None:
    sandbox.state.inject(CALLS[name][0], status=429, retry_after=37)
    with pytest.raises(TransientError) as caught:
        await call(vendors, name)
    assert caught.value.retry_after == 37.0


@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_retry_after_as_http_date(
    vendors: Vendors, sandbox: SandboxServer, clock: FrozenClock, name: str
) -> None:
    """The vendors' clock and ours agree (both frozen): the wait is the date minus now."""
    when = email.utils.formatdate(clock() + 120, usegmt=True)
    sandbox.state.inject(CALLS[name][0], status=503, retry_after=when)
    with pytest.raises(TransientError) as caught:
        await call(vendors, name)
    assert caught.value.status == 503 and caught.value.retry_after == 120.0


async def test_retry_after_in_the_past_is_now(vendors: Vendors, sandbox: SandboxServer, clock: FrozenClock) -> None:
    sandbox.state.inject("segmetrics", status=429, retry_after=email.utils.formatdate(clock() - 60, usegmt=True))
    with pytest.raises(TransientError) as caught:
        await call(vendors, "segmetrics")
    assert caught.value.retry_after == 0.0


async def test_unreadable_retry_after_is_ignored(vendors: Vendors, sandbox: SandboxServer) -> None:
    sandbox.state.inject("segmetrics", status=503, retry_after="soon")
    with pytest.raises(TransientError) as caught:
        await call(vendors, "segmetrics")
    assert caught.value.retry_after is None


@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_dropped_connection_is_transient(vendors: Vendors, sandbox: SandboxServer, name: str) -> None:
    sandbox.state.inject(CALLS[name][0], drop=True)
    with pytest.raises(TransientError) as caught:
        await call(vendors, name)
    assert caught.value.status is None and "network" in caught.value.message
    assert sandbox.state.requests[-1].fault == "drop"


@pytest.mark.parametrize("name", VENDOR_CALLS)
async def test_timeout_is_transient(vendors: Vendors, sandbox: SandboxServer, name: str) -> None:
    sandbox.state.inject(CALLS[name][0], delay=30)
    with pytest.raises(TransientError) as caught:
        await call(vendors, name, timeout=0.2)
    assert caught.value.status is None
    assert "0.2s" in caught.value.message or "timed out" in caught.value.message


async def test_requests_of_one_operation_share_the_budget(vendors: Vendors, sandbox: SandboxServer) -> None:
    """Each of the upsert's requests alone fits in the budget; together they do not."""
    sandbox.state.inject("infinity", delay=0.15, times=3)
    with pytest.raises(TransientError):
        await vendors.perform("infinity", "upsert_segment", samples.segment_upsert(), idempotency_key=KEY,
                              timeout=0.35)
    assert len(sandbox.state.requests) <= 3


async def test_connection_refused_is_transient(vendor_settings: Callable[..., Any], http: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        vendors = Vendors(vendor_settings(segmetrics={"base_url": f"http://127.0.0.1:{port}/api/v1"}), http)
        with pytest.raises(TransientError) as caught:
            await call(vendors, "segmetrics")
    assert "ConnectError" in caught.value.message


# -- answers sluice cannot understand -------------------------------------------------------------------

HTML = "<!doctype html><html><body><h1>Down for maintenance</h1></body></html>"


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("segmetrics", HTML, "text/html"),
        ("segmetrics", '{"status":"succ', None),
        ("segmetrics", "", None),
        ("segmetrics", '{"status":"error","errors":["nope"]}', None),
        ("segmetrics", "[]", None),
        ("salesmachine", HTML, "text/html"),
        ("salesmachine", '{"status":', None),
        ("salesmachine", "", None),
        ("salesmachine_v2", '{"object":"contact.list","data":{}}', None),
        ("salesmachine_v2", "", None),
        ("personaclick", HTML, "text/html"),
        ("personaclick", "", None),
        ("personaclick", "null", None),
        ("personaclick_list", '{"status":"success"}', None),
        ("personaclick_list", "[1, 2]", None),
        ("infinity", HTML, "text/html"),
        ("infinity", '{"segment":"400","segmentRef":"vi', None),
        ("infinity", '["400"]', None),
    ],
)
async def test_malformed_2xx_is_permanent(
    vendors: Vendors, sandbox: SandboxServer, name: str, body: str, content_type: str | None
) -> None:
    sandbox.state.inject(CALLS[name][0], status=200, body=body, content_type=content_type)
    with pytest.raises(PermanentError) as caught:
        await call(vendors, name)
    assert caught.value.status == 200
    assert "cannot understand" in caught.value.message
    assert caught.value.body == body[:BODY_LIMIT]


async def test_infinity_empty_body_is_no_rows(vendors: Vendors, sandbox: SandboxServer) -> None:
    sandbox.state.inject("infinity", status=200, body="")
    await call(vendors, "infinity")


async def test_infinity_create_with_an_undocumented_body_is_fine(vendor_settings: Callable[..., Any]) -> None:
    """The 201 body of a create is not documented: whatever it is, the group is found again by name.
    (A mock transport: the sandbox's faults answer instead of the emulator, so nothing would be created.)"""
    created: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            created.append("Customers")
            return httpx.Response(201, text="<p>created</p>", headers={"content-type": "text/html"})
        rows = "".join(f'{{"segmentGroupId":"11","segmentGroupName":"{n}"}}\n' for n in created)
        return httpx.Response(200, text=rows)

    async with httpx.MockTransport(answer) as client:
        await Vendors(vendor_settings(), client).perform(
            "infinity", "ensure_segment_group", samples.segment_upsert(), idempotency_key=KEY, timeout=2
        )
    assert created == ["Customers"]


async def test_infinity_create_that_cannot_be_found_again_is_permanent(
    vendors: Vendors, sandbox: SandboxServer
) -> None:
    sandbox.state.inject("infinity", status=201, method="POST", body="")  # answered, but nothing created
    with pytest.raises(PermanentError, match="created but not found"):
        await vendors.perform("infinity", "ensure_segment_group", samples.segment_upsert(), idempotency_key=KEY,
                              timeout=2)


# -- error details --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "suffix"),
    [
        ("segmetrics", '{"status":"error","errors":["missing \'id\' field "]}', ": missing 'id' field"),
        ("salesmachine", '{"status":"error","error":"boom","code":"x","message":"Bad thing"}', ": Bad thing"),
        ("personaclick", '{"status":"error","message":"Shop not found"}', ": Shop not found"),
        ("personaclick", '{"status":"error","payload":{"message":"Shop not found"}}', ": Shop not found"),
        ("infinity", '{"error":"segmentName is required","code":400}\n', ": segmentName is required"),
        ("infinity", "<html>nope</html>", "400 to GET /infinity/config/v2/igrps/1/segments"),
    ],
)
async def test_vendor_error_messages_are_surfaced(
    vendors: Vendors, sandbox: SandboxServer, name: str, body: str, suffix: str
) -> None:
    sandbox.state.inject(CALLS[name][0], status=400, body=body)
    with pytest.raises(PermanentError) as caught:
        await call(vendors, name)
    assert caught.value.body == body  # as text, whatever its shape
    assert caught.value.message.endswith(suffix)


async def test_error_body_is_cut_at_2_kib(vendors: Vendors, sandbox: SandboxServer) -> None:
    sandbox.state.inject("segmetrics", status=500, body="é" * 5000)
    with pytest.raises(TransientError) as caught:
        await call(vendors, "segmetrics")
    assert len(caught.value.body) <= BODY_LIMIT and caught.value.body.startswith("éé")


SECRETS = {
    "segmetrics": ["segmetrics-sandbox-key"],
    "salesmachine": ["salesmachine-sandbox-token", "salesmachine-sandbox-secret",
                     "c2FsZXNtYWNoaW5lLXNhbmRib3gtdG9rZW46c2FsZXNtYWNoaW5lLXNhbmRib3gtc2VjcmV0"],
    "personaclick": ["personaclick-sandbox-secret"],
    "infinity": ["infinity-sandbox-password", "aW5maW5pdHktc2FuZGJveDppbmZpbml0eS1zYW5kYm94LXBhc3N3b3Jk"],
}


@pytest.mark.parametrize("name", VENDOR_CALLS)
@pytest.mark.parametrize("status", [200, 401, 503])
async def test_secrets_echoed_by_a_vendor_are_redacted(
    vendors: Vendors, sandbox: SandboxServer, name: str, status: int
) -> None:
    vendor = CALLS[name][0]
    secrets = SECRETS[vendor]
    echoed = "<html>" + " ".join(f"bad credential {s}" for s in secrets) + "</html>"
    sandbox.state.inject(vendor, status=status, body=echoed)
    with pytest.raises((PermanentError, TransientError)) as caught:
        await call(vendors, name)
    text = str(caught.value.as_dict()) + str(caught.value)
    assert "[redacted]" in text
    assert not any(s in text for s in secrets)
