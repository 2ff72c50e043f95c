"""JSON responses rendered with orjson; the error bodies of SPEC section 3 are rendered once."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

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


def accepted(event_id: str, *, duplicate: bool) -> Response:
    if duplicate:
        return Response(orjson.dumps({"id": event_id, "status": "duplicate"}), 200, media_type=JSON)
    return Response(orjson.dumps({"id": event_id, "status": "queued"}), 202, media_type=JSON)
