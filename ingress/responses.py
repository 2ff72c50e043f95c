"""JSON responses rendered with orjson; the error bodies of SPEC section 3 are rendered once."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

JSON = "application/json"


class ORJSONResponse(Response):
    media_type = JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ERRORS: dict[str, bytes] = {}


def error(status: int, code: str) -> Response:
    """`{"error": code}` with the status; `code` is the stable machine-readable name."""
    body = _ERRORS.get(code)
    if body is None:
        body = _ERRORS[code] = orjson.dumps({"error": code})
    return Response(body, status, media_type=JSON)


def error_with_detail(status: int, code: str, detail: Any) -> Response:
    return Response(orjson.dumps({"error": code, "detail": detail}), status, media_type=JSON)


class Accepted:
    """The 202 (or the duplicate's 200) of a webhook, as a bare ASGI app: the hottest answer skips the header
    building of Starlette's `Response` (the same two messages, the same headers)."""

    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": [(b"content-length", b"%d" % len(self.body)), (b"content-type", _JSON_BYTES)]})
        await send({"type": "http.response.body", "body": self.body})


_JSON_BYTES = JSON.encode()


def accepted(event_id: str, *, duplicate: bool) -> Accepted:
    if duplicate:
        return Accepted(200, orjson.dumps({"id": event_id, "status": "duplicate"}))
    return Accepted(202, orjson.dumps({"id": event_id, "status": "queued"}))
