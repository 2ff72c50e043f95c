"""The HTTP transport of the worker's vendor calls: aiohttp's connection pool and C parser (`httpx-aiohttp`),
in place of httpcore's pool, which costs several times more CPU per call (bench/README.md).

Vendor clients still speak httpx only (requests, responses, timeouts, exceptions). This module keeps that
promise at its edge: every failure the aiohttp side can raise, while sending or while reading the body, leaves
it as the httpx exception that names what happened (a dropped connection is a `RemoteProtocolError`), so
`handlers.base.classify_exception` stays the one place that turns transport failures into the error taxonomy.
"""

from __future__ import annotations

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport


def translated(exc: BaseException, request: httpx.Request) -> BaseException:
    """The httpx exception for a failure of the aiohttp side; anything else is returned unchanged."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx.RequestError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, TimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError  # dropped mid-answer, or an answer that is not HTTP
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ClientError, OSError)):
        kind = httpx.ReadError
    else:
        return exc
    return kind(message, request=request)


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
        """Send `request` and read the whole answer before returning it (vendor answers are small, and every
        caller reads them whole): the response handed back is already read, so reading it again costs
        nothing and no aiohttp stream outlives this call. Decompression stays httpx's, as for any stream."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        try:
            async with self.client.request(
                request.method,
                # already encoded by httpx: aiohttp would otherwise re-quote it (`%7E` sent as `~`), and the
                # query is PHP's encoding byte for byte (handlers.base.form_encode)
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeout.get("connect"), sock_read=timeout.get("read"),
                                              connect=timeout.get("pool")),
            ) as answer:
                body = await answer.read()
        except Exception as exc:
            raise translated(exc, request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        response = httpx.Response(answer.status, headers=answer.raw_headers, stream=httpx.ByteStream(body),
                                  request=request, extensions=extensions)
        response.read()
        return response
