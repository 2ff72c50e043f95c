"""The admin API (SPEC section 7): dead letters and per-event call states, behind a bearer token.

No admin_token configured: every /admin route answers 404, as if it did not exist. Bulk replay answers at once
with the number of dead letters it will replay, then replays them in batches in the background
(ingress.bulk_replay, shared with the console), so replaying 10,000 dead letters never holds up webhook requests.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config.settings import Settings
from ingress.bulk_replay import BulkReplays
from ingress.responses import ORJSONResponse, error, error_with_detail
from ingress.state import IngressState
from core.clock import Clock, system_clock
from store.dead_letters import DeadLetterStore, Filter, parse_cursor
from store.events import event_view
from store.intake import Intake
from store.keys import Keys

log = structlog.get_logger("sluice.admin")

Handler = Callable[[Request, "Admin"], Awaitable[Response]]


def json(status: int, body: Any) -> Response:
    return ORJSONResponse(body, status_code=status)


def not_found() -> Response:
    return error(404, "not_found")


class Admin:
    """What the admin routes need, built once in the ingress's lifespan and found at `request.state.admin`."""

    @classmethod
    @contextlib.asynccontextmanager
    async def resource(cls, state: IngressState) -> AsyncIterator[dict[str, Any]]:
        """The ingress lifespan's hook: `request.state.admin`, closed (bulk replays finished) at shutdown."""
        admin = cls(state.settings, state.redis, Intake(state.redis, state.keys, state.settings.delivery),
                    state.clock)
        try:
            yield {"admin": admin}
        finally:
            await admin.close()

    def __init__(self, settings: Settings, redis: Redis, intake: Intake, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = Keys(settings.namespace)
        self.dead_letters = DeadLetterStore(redis, self.keys, intake, clock)
        token = settings.ingress.admin_token
        self.token = None if token is None else f"Bearer {token.get_secret_value()}".encode()
        self.replays = BulkReplays(self.dead_letters)

    def authorized(self, request: Request) -> bool:
        assert self.token is not None
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self.token)

    def start_replay(self, letters: list[dict[str, Any]], *, force: bool = False) -> None:
        self.replays.start(letters, force=force)

    async def close(self) -> None:
        """Let running bulk replays finish (the ingress's shutdown waits for them)."""
        await self.replays.close()


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response = await answer(request)
        # one line per admin request: who changed what is worth an audit trail (never the token itself)
        log.info("admin", method=request.method, path=request.url.path, status=response.status_code,
                 duration_ms=round((time.perf_counter() - started) * 1000, 3))
        return response

    async def answer(request: Request) -> Response:
        admin: Admin = request.state.admin
        if admin.token is None:
            return not_found()
        if not admin.authorized(request):
            return error(401, "unauthorized")
        try:
            return await handler(request, admin)
        except RedisError:
            return error(503, "unavailable")

    return endpoint


def bad_request(*problems: str) -> Response:
    return error_with_detail(400, "invalid_request", list(problems))


async def show_event(request: Request, admin: Admin) -> Response:
    view = await event_view(admin.redis, admin.keys, admin.settings.route_table,
                            request.path_params["source"], request.path_params["event_id"])
    return not_found() if view is None else json(200, view)


def parse_limit(raw: str | None) -> int:
    if not raw:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ValueError("limit: a whole number from 1 to 1000")
    return int(raw)


async def list_dead_letters(request: Request, admin: Admin) -> Response:
    params = request.query_params
    try:
        flt = Filter.parse(params)
        limit = parse_limit(params.get("limit"))
        cursor = params.get("cursor") or None
        if cursor is not None:
            parse_cursor(cursor)
    except ValueError as exc:
        return bad_request(str(exc))
    items, next_cursor = await admin.dead_letters.page(flt, limit=limit, cursor=cursor)
    return json(200, {"items": items, "next_cursor": next_cursor})


async def get_dead_letter(request: Request, admin: Admin) -> Response:
    letter = await admin.dead_letters.get(request.path_params["id"])
    return not_found() if letter is None else json(200, letter)


async def json_object(request: Request, fields: set[str]) -> dict[str, Any] | Response:
    """The request's JSON object body (empty = {}), or the 400 that says what is wrong with it; `force` and
    `dry_run` must be booleans."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return bad_request("body: not JSON")
    if not isinstance(body, dict):
        return bad_request("body: must be a JSON object")
    unknown = set(body) - fields
    if unknown:
        return bad_request(*(f"{name}: unknown field" for name in sorted(unknown)))
    for flag in ("dry_run", "force"):
        if not isinstance(body.get(flag, False), bool):
            return bad_request(f"{flag}: must be true or false")
    return body


async def replay_one(request: Request, admin: Admin) -> Response:
    body = await json_object(request, {"force"})
    if isinstance(body, Response):
        return body
    if not await admin.dead_letters.replay(request.path_params["id"], force=body.get("force", False)):
        return not_found()
    return json(202, {"replayed": 1})


async def replay_many(request: Request, admin: Admin) -> Response:
    body = await json_object(request, {"vendor", "type", "source", "since", "until", "dry_run", "force"})
    if isinstance(body, Response):
        return body
    try:
        flt = Filter.parse(body)
    except ValueError as exc:
        return bad_request(str(exc))
    letters = [letter async for letter in admin.dead_letters.iterate(flt)]
    if body.get("dry_run"):
        return json(200, {"would_replay": len(letters)})
    admin.start_replay(letters, force=body.get("force", False))
    return json(202, {"replayed": len(letters)})


async def delete_dead_letter(request: Request, admin: Admin) -> Response:
    if not await admin.dead_letters.delete(request.path_params["id"]):
        return not_found()
    return Response(status_code=204)


def admin_routes() -> list[Route]:
    return [
        Route("/admin/events/{source}/{event_id}", guarded(show_event), methods=["GET"]),
        Route("/admin/dead-letters", guarded(list_dead_letters), methods=["GET"]),
        Route("/admin/dead-letters/replay", guarded(replay_many), methods=["POST"]),
        Route("/admin/dead-letters/{id}", guarded(get_dead_letter), methods=["GET"]),
        Route("/admin/dead-letters/{id}", guarded(delete_dead_letter), methods=["DELETE"]),
        Route("/admin/dead-letters/{id}/replay", guarded(replay_one), methods=["POST"]),
    ]
