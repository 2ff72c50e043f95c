"""Failures on the aiohttp side of the transport leave it as the httpx exception that names them."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
import trustme

from core.errors import TransientError
from handlers.base import Call, Deadline, VendorClient
from handlers.transport import VendorTransport, translated

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


def test_everything_else_passes_unchanged() -> None:
    bug = ValueError("a bug")
    assert translated(bug, REQUEST) is bug
    already = httpx.ReadError("read", request=REQUEST)
    assert translated(already, REQUEST) is already


# -- TLS: vendors are reached over HTTPS in production ---------------------------------------------------------


@contextlib.asynccontextmanager
async def answering_server(answer_bytes: bytes, context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A server on loopback that answers every request with `answer_bytes`, then closes; HTTPS with `context`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer_bytes)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that refused the certificate
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def tls_server(ca: trustme.CA) -> contextlib.AbstractAsyncContextManager[str]:
    """A one-answer HTTPS server on loopback, its certificate issued by `ca` for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ok = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
    return answering_server(ok, context)


async def test_https_with_a_trusted_certificate() -> None:
    ca = trustme.CA()
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with tls_server(ca) as url, VendorTransport(verify=trusted) as transport:
        response = await VendorClient(transport, url).send(Call("key", Deadline(5)), "GET", "/ping")
    assert response is not None and response.status_code == 200 and response.json() == {"ok": True}


async def test_https_with_an_unknown_certificate_is_refused() -> None:
    async with tls_server(trustme.CA()) as url, VendorTransport() as transport:  # system trust store only
        with pytest.raises(TransientError, match="ConnectError"):
            await VendorClient(transport, url).send(Call("key", Deadline(5)), "GET", "/ping")


# -- answers: read whole by the transport, decoded by httpx ------------------------------------------------------


async def test_a_compressed_answer_arrives_decoded_and_already_read() -> None:
    body = gzip.compress(b'{"status":"success"}')
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: {len(body)}"
    async with answering_server(head.encode() + b"\r\n\r\n" + body) as url, VendorTransport() as transport:
        response = await transport.handle_async_request(httpx.Request("GET", f"{url}/x"))
    assert response.is_stream_consumed and response.content == b'{"status":"success"}'


async def test_an_answer_cut_short_is_a_protocol_error() -> None:
    """The body is read inside the transport: a connection dropped mid-body fails the send itself."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    async with answering_server(head + b'{"status":') as url, VendorTransport() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(httpx.Request("GET", f"{url}/x"))
