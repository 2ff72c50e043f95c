"""The baseline of bench/ingress.py: a bare Starlette endpoint that reads the body and answers 202.

Run by uvicorn with the same settings as the Procfile's `web:` (`--factory bench.bare_app:create_app`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ACCEPTED = b'{"status":"queued"}'


async def receive(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, 202, media_type="application/json")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/webhooks/{source}", receive, methods=["POST"])])
