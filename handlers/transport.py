"""The HTTP transport of the worker's vendor calls: aiohttp's connection pool and C parser (`httpx-aiohttp`),
in place of httpcore's pool, which costs several times more CPU per call (bench/README.md).

Vendor clients still speak httpx only (requests, responses, timeouts, exceptions). This module keeps that
promise at its edge: every failure the aiohttp side can raise, while sending or while reading the body, leaves
it as the httpx exception that names what happened (a dropped connection is a `RemoteProtocolError`, not the
`ConnectTimeout` httpx-aiohttp's own table says), so `handlers.base.classify_exception` stays the one place
that turns transport failures into the error taxonomy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def translated(exc: BaseException, request: httpx.Request) -> BaseException:
    """The httpx exception for a failure of the aiohttp side (as raised, or already mapped by httpx-aiohttp,
    whose original is its `__cause__`); anything else is returned unchanged."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    message = str(cause) or type(cause).__name__
    kind: type[httpx.RequestError]
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(cause, TimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(cause, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                            aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError  # dropped mid-answer, or an answer that is not HTTP
    elif isinstance(cause, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, httpx.HTTPError):
        return exc
    elif isinstance(cause, (aiohttp.ClientError, OSError)):
        kind = httpx.ReadError
    else:
        return exc
    return kind(message, request=request)


class _Body(httpx.AsyncByteStream):
    """The response body stream, with read failures translated like send failures."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            raise translated(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except Exception as exc:
            raise translated(exc, self._request) from exc


class VendorTransport(AiohttpTransport):
    """httpx-aiohttp's transport with a session of our own: a pool of `limits.max_connections` kept alive
    for `limits.keepalive_expiry` (shorter than common server idle timeouts, so the pool drops a connection
    before the server does), no cookie jar (vendors need none), and no silent resend: aiohttp repeats a
    GET/PUT/DELETE once when a reused connection drops, which would hide attempts from the ledger and from
    `worker.retry`, the one place that decides to try again. aiohttp has no public switch for that; the
    private flag is pinned with aiohttp's version and guarded by tests/handlers/test_errors.py (a dropped
    connection must surface for every vendor)."""

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 30.0,
            ssl=self.ssl_context,
        )
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            raise translated(exc, request) from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream, request)
        return response
