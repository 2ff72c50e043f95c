"""The naive baseline of bench/ingress.py: verify the Standard Webhooks signature, read the id, and call stock
`arq` `enqueue_job(_job_id=...)` (WATCH/MULTI transaction, several round trips per event).

No schema validation and no logging: it is a floor for "what the obvious code costs", not a product.
Run by uvicorn with the same settings as the Procfile's `web:` (`--factory bench.naive_app:create_app`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import orjson
from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config.settings import load_or_exit
from core.errors import VerificationError
from ingress.app import build_verifiers


def create_app() -> Starlette:
    settings = load_or_exit()
    verifiers = build_verifiers(settings)
    queue = f"{settings.namespace}:naive-queue"
    pool = None

    async def receive(request: Request) -> Response:
        source = request.path_params["source"]
        verifier = verifiers.get(source)
        if verifier is None:
            return Response(b'{"error":"unknown_source"}', 404, media_type="application/json")
        body = await request.body()
        try:
            verifier.verify(request.headers, body, time.time())
        except VerificationError:
            return Response(b'{"error":"invalid_signature"}', 401, media_type="application/json")
        event_id = orjson.loads(body)["id"]
        job = await pool.enqueue_job("deliver", source, event_id, _job_id=f"{source}:{event_id}",
                                     _queue_name=queue)
        status = 202 if job is not None else 200
        return Response(orjson.dumps({"id": event_id, "status": "queued"}), status, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        try:
            yield
        finally:
            await pool.aclose()

    return Starlette(routes=[Route("/webhooks/{source}", receive, methods=["POST"])], lifespan=lifespan)
