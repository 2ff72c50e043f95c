"""`POST /webhooks/{source}`: the checks of SPEC section 3, in order, each answering with its own status.

source (404) → content type (415) → declared size (413) → body read within the limit (413) and within
`body_timeout_seconds` (408, so a client trickling its body cannot hold the server forever) → signature over
the raw bytes (401) → JSON and schema (400) → durable store (503 when Redis fails; 202 new, 200 duplicate).
Whatever happens, the answer is never a 500: an unexpected error is logged and answered 503, nothing stored.

The endpoint is a plain ASGI app (`webhook_app`), reached through `WebhookFastPath` ahead of Starlette's
routing: the hottest route skips Starlette's exception middleware, router and Request object (~10 us of the
~100 us a webhook costs, bench/README.md). Responses are still Starlette `Response`s, sent as ASGI apps.
Other methods on the same path, and every other route, go through Starlette as usual.
"""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import VerificationError
from core.events import InvalidEvent, validate_event
from ingress.deadlines import BodyDeadlines
from ingress.responses import Accepted, accepted, error, error_with_detail
from ingress.state import IngressState, WebhookResult

PREFIX = "/webhooks/"


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` or any `application/<x>+json` (RFC 6839), parameters and case ignored.

    A `charset` parameter is not inspected: the body must be UTF-8 JSON whatever it says, and the
    JSON check answers 400 when it is not.
    """
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json":
        return True
    subtype = media.removeprefix("application/")
    return subtype != media and subtype.endswith("+json") and len(subtype) > len("+json")


def declared_too_large(content_length: str | None, limit: int) -> bool:
    """A Content-Length over the limit; an unreadable one is left to the streaming limit."""
    if content_length is None or not (content_length.isascii() and content_length.isdigit()):
        return False
    return int(content_length) > limit


async def read_body(receive: Receive, limit: int, deadlines: BodyDeadlines) -> bytes | None:
    """The whole body, or None as soon as more than `limit` bytes arrived (the rest is never read).
    TimeoutError when the whole body has not arrived within the deadlines' timeout."""
    return await deadlines.read_within(_read_body(receive, limit))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        if chunk:
            chunks.append(chunk)


def _reject(result: WebhookResult, status: int, code: str, reason: str | None = None) -> Response:
    result.outcome = code
    result.reason = reason
    return error(status, code)


def header_map(scope: Scope) -> dict[str, str]:
    """The request headers by name, latin-1 decoded as servers do; of a repeated header, the first. ASGI servers
    give the names in lower case already (the ASGI spec requires it)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


async def _handle(headers: dict[str, str], receive: Receive, state: IngressState,
                  result: WebhookResult) -> Response | Accepted:
    verifier = state.verifiers.get(result.source)
    if verifier is None:
        return _reject(result, 404, "unknown_source")
    if not is_json_media_type(headers.get("content-type")):
        return _reject(result, 415, "unsupported_media_type")
    limit = state.max_body_bytes
    if declared_too_large(headers.get("content-length"), limit):
        return _reject(result, 413, "payload_too_large", "content-length")
    try:
        body = await read_body(receive, limit, state.body_deadlines)
    except TimeoutError:
        response = _reject(result, 408, "request_timeout")
        response.headers["connection"] = "close"  # else the server waits on for the rest of the body
        return response
    if body is None:
        return _reject(result, 413, "payload_too_large", "streamed")
    try:
        verifier.verify(headers, body, state.clock())
    except VerificationError as exc:
        return _reject(result, 401, "invalid_signature", str(exc))
    try:
        event = validate_event(body)
    except InvalidEvent as exc:
        result.outcome = "invalid_event"
        result.reason = ",".join(d["field"] for d in exc.details)[:200]
        return error_with_detail(400, "invalid_event", exc.details)
    event_id: str = event["id"]
    result.event_id = event_id
    result.event_type = event["type"]
    try:
        fresh = await state.intake.accept(result.source, event, body)
    except (RedisError, OSError) as exc:  # OSError covers socket errors and TimeoutError
        return _reject(result, 503, "unavailable", type(exc).__name__)
    result.outcome = "queued" if fresh else "duplicate"
    return accepted(event_id, duplicate=not fresh)


def _report(state: IngressState, result: WebhookResult) -> None:
    fields: dict[str, Any] = {"source": result.source, "status": result.status, "outcome": result.outcome,
                              "duration_ms": result.duration_ms}
    if result.event_id is not None:
        fields["event_id"] = result.event_id
        fields["type"] = result.event_type
    if result.reason is not None:
        fields["reason"] = result.reason
    state.log.info("webhook", **fields)
    for observe in state.observers:
        try:
            observe(result)
        except Exception:  # an observer (metrics) must never change the answer
            state.log.exception("webhook observer failed")


async def webhook_app(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /webhooks/{source}` as a plain ASGI app (the lifespan's state is in `scope["state"]`)."""
    state: IngressState = scope["state"]["ingress"]
    started = time.perf_counter()
    params = scope.get("path_params")  # set when Starlette's router matched the route (not on the fast path)
    source = params["source"] if params else scope["path"][len(PREFIX):]
    result = WebhookResult(source=source[:100])
    try:
        response = await _handle(header_map(scope), receive, state, result)
    except ClientDisconnect:
        response = _reject(result, 400, "disconnected")  # nobody reads this answer
    except Exception:
        state.log.exception("webhook failed", source=result.source)
        response = _reject(result, 503, "unavailable", "internal error")
    result.status = response.status_code
    result.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    _report(state, result)
    await response(scope, receive, send)


def is_webhook(scope: Scope) -> bool:
    """A POST to `/webhooks/<source>`: what Starlette's `/webhooks/{source}` route would match."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    return path.startswith(PREFIX) and len(path) > len(PREFIX) and "/" not in path[len(PREFIX):]


class WebhookRoute:
    """`webhook_app` as the endpoint of Starlette's `/webhooks/{source}` route (an instance, not a function,
    so Starlette calls it as a plain ASGI app). The route keeps the path in Starlette's table: a GET there is a
    405, and a request the fast path does not recognise still arrives."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await webhook_app(scope, receive, send)


class WebhookFastPath:
    """ASGI middleware: webhooks go straight to `webhook_app`, everything else on to Starlette's stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_webhook(scope):
            await webhook_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
