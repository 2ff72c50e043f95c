"""Failures on the aiohttp side of the transport leave it as the httpx exception that names them."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from handlers.transport import translated

REQUEST = httpx.Request("POST", "http://vendor.example/x")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut short"), httpx.RemoteProtocolError),
        (aiohttp.ClientResponseError(aiohttp.RequestInfo(REQUEST.url, "POST", {}, REQUEST.url),  # type: ignore[arg-type]
                                     (), status=400, message="bad status line"), httpx.RemoteProtocolError),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (ConnectionResetError(104, "reset"), httpx.ReadError),
        (aiohttp.InvalidURL("nope"), httpx.UnsupportedProtocol),
    ],
)
def test_aiohttp_failures_become_httpx_ones(raised: BaseException, expected: type) -> None:
    out = translated(raised, REQUEST)
    assert type(out) is expected and out.request is REQUEST  # type: ignore[attr-defined]


def test_httpx_aiohttp_mapping_is_refined_by_its_cause() -> None:
    mapped = httpx.ConnectTimeout("server disconnected")  # httpx-aiohttp's own table for a dropped connection
    mapped.__cause__ = aiohttp.ServerDisconnectedError()
    assert type(translated(mapped, REQUEST)) is httpx.RemoteProtocolError


def test_everything_else_passes_unchanged() -> None:
    bug = ValueError("a bug")
    assert translated(bug, REQUEST) is bug
    already = httpx.ReadError("read", request=REQUEST)
    assert translated(already, REQUEST) is already
