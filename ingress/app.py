"""The ingress application: `create_app` (the factory uvicorn runs), its lifespan and its routes.

`create_app` checks the sources' secrets once (a bad one stops startup), the lifespan opens one Redis client
and the acceptor (`store.intake.Intake` unless another is injected) and hands them to requests as
`request.state.ingress` (an `IngressState`). Routes come from `build_routes`. The seams for what comes
ingress also serves /metrics, /openapi.json, the admin API (ingress.admin) and, when an admin token is configured,
the operator console at /console (ingress.console). Seams: `extra_routes` join
the route list, `resources` add their own lifespan-built state, `observers` see every webhook's
`WebhookResult`, and `acceptor` swaps the store (default `store.intake.BatchingIntake`: concurrent requests
share one Redis round trip, each answered only after its own write was acknowledged, by `[redis] replicas_ack`
replicas too when set). The Redis client comes from `store.connection`, as every process's does.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from config.logging import configure_logging
from config.process import freeze_startup_heap
from config.settings import Settings, load_or_exit
from core.clock import Clock, system_clock
from core.errors import ConfigError
from core.signatures import Verifier, build_verifier
from ingress.admin import Admin, admin_routes
from ingress.console import Console
from ingress.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ingress.metrics import IngressMetrics
from ingress.openapi import openapi_document
from ingress.responses import ORJSONResponse, error
from ingress.state import Acceptor, IngressState, Observer
from ingress.webhooks import WebhookFastPath, WebhookRoute
from store.batch import WaitReplicas
from store.connection import redis_client, refuse_cluster_now
from store.intake import BatchingIntake
from store.keys import Keys

REDIS_CONNECT_TIMEOUT = 1.0
REDIS_SOCKET_TIMEOUT = 2.0
"""Short, so a Redis that is down or stuck turns into a quick 503 rather than a hung sender."""

AcceptorFactory = Callable[..., Acceptor]
"""Called as `(redis, keys, delivery_settings, clock, tolerance_seconds=...)`, like `store.intake.Intake`."""
Resource = Callable[[IngressState], contextlib.AbstractAsyncContextManager[Mapping[str, Any]]]
"""Entered by the lifespan after the core state is built; what it yields joins the request state
(e.g. `{"admin": Admin(...)}` found at `request.state.admin`), and it is exited at shutdown."""


def ingress_redis(settings: Settings) -> Redis:
    """The ingress's client: fail fast (one try, short timeouts), from the one place that builds clients."""
    return redis_client(settings, connect_timeout=REDIS_CONNECT_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT)


def replicas_acknowledged(settings: Settings) -> AcceptorFactory:
    """The default acceptor: `BatchingIntake`, whose batches end with one WAIT when `[redis] replicas_ack` asks
    for replicas. Only the ingress waits: a promoted replica holds a prefix of the old primary's writes, so a
    fail-over that loses the tail of the workers' writes leaves Redis as if they had stopped at that moment, which
    the crash rules cover (the job runs again; a call sent again carries the same idempotency key). An event the
    ingress acknowledged, though, exists nowhere else."""
    ack = settings.redis
    wait = WaitReplicas(ack.replicas_ack, ack.replicas_ack_timeout_ms, Keys(settings.namespace).replicas_fence) \
        if ack.replicas_ack else None
    return functools.partial(BatchingIntake, wait_replicas=wait)


def build_verifiers(settings: Settings) -> dict[str, Verifier]:
    """One verifier per source, keys decoded once; ConfigError naming the source's key when a secret is unusable."""
    return {
        name: build_verifier(
            source.scheme,
            [s.get_secret_value() for s in source.secrets],
            settings.ingress.tolerance_seconds,
            key=f"sources.{name}.secrets",
        )
        for name, source in settings.sources.items()
    }


async def healthz(request: Request) -> Response:
    return ORJSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: IngressState = request.state.ingress
    try:
        await state.redis.ping()
    except (RedisError, OSError):
        return error(503, "unavailable")
    return ORJSONResponse({"status": "ok"})


def metrics_endpoint(metrics: IngressMetrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: IngressState = request.state.ingress
        try:
            body = await metrics.render(state.redis, state.keys)
        except (RedisError, OSError):  # this process's own figures are still worth a scrape
            body = metrics.render_local()
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    return endpoint


def openapi_endpoint() -> Callable[[Request], Awaitable[Response]]:
    document = orjson.dumps(openapi_document())

    async def endpoint(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return endpoint


def logged(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """One log line per request for the routes that do not write their own (webhooks and admin do)."""

    async def wrapper(request: Request) -> Response:
        started = time.perf_counter()
        response = await endpoint(request)
        request.state.ingress.log.info("request", method=request.method, path=request.url.path,
                                       status=response.status_code,
                                       duration_ms=round((time.perf_counter() - started) * 1000, 3))
        return response

    return wrapper


def build_routes(metrics: IngressMetrics, extra_routes: Sequence[BaseRoute] = ()) -> list[BaseRoute]:
    """Every route of the ingress and the admin API; `extra_routes` are appended."""
    return [
        Route("/webhooks/{source}", WebhookRoute(), methods=["POST"]),
        Route("/healthz", logged(healthz), methods=["GET"]),
        Route("/readyz", logged(readyz), methods=["GET"]),
        Route("/metrics", logged(metrics_endpoint(metrics)), methods=["GET"]),
        Route("/openapi.json", logged(openapi_endpoint()), methods=["GET"]),
        *admin_routes(),
        *extra_routes,
    ]


_HTTP_ERRORS: Mapping[int, str] = {404: "not_found", 405: "method_not_allowed"}


async def http_error(request: Request, exc: Exception) -> Response:
    status: int = getattr(exc, "status_code", 500)
    response = error(status, _HTTP_ERRORS.get(status, f"http_{status}"))
    if getattr(exc, "headers", None):
        response.headers.update(exc.headers)  # type: ignore[attr-defined]  # e.g. Allow on a 405
    return response


async def internal_error(request: Request, exc: Exception) -> Response:
    return error(500, "internal_error")


def _lifespan(
    settings: Settings,
    verifiers: Mapping[str, Verifier],
    clock: Clock,
    redis: Redis | None,
    acceptor: AcceptorFactory,
    observers: Sequence[Observer],
    resources: Sequence[Resource],
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        client = redis or ingress_redis(settings)
        keys = Keys(settings.namespace)
        state = IngressState(
            settings=settings, keys=keys, redis=client, intake=acceptor(client, keys, settings.delivery, clock,
                                                     tolerance_seconds=settings.ingress.tolerance_seconds),
            verifiers=verifiers, clock=clock, log=structlog.get_logger("sluice.ingress"),
            observers=tuple(observers),
        )
        async with contextlib.AsyncExitStack() as stack:
            if redis is None:  # a client passed in belongs to the caller
                stack.push_async_callback(client.aclose)
            extra: dict[str, Any] = {}
            for resource in resources:
                extra.update(await stack.enter_async_context(resource(state)))
            yield {**extra, "ingress": state}

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    redis: Redis | None = None,
    acceptor: AcceptorFactory | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    observers: Sequence[Observer] = (),
    resources: Sequence[Resource] = (),
) -> Starlette:
    """The ingress app. With no settings (uvicorn's factory call) it loads the config file and sets up logging."""
    from_config = settings is None
    if settings is None:
        configure_logging()
        settings = load_or_exit()
        try:
            verifiers = build_verifiers(settings)
            refuse_cluster_now(settings)
        except ConfigError as exc:
            print(f"sluice: config error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    else:
        verifiers = build_verifiers(settings)
    metrics = IngressMetrics()
    console = Console.build(settings, clock)  # None without an admin token: no /console at all
    if console is not None:
        extra_routes = [*console.routes(), *extra_routes]
        resources = [console.resource, *resources]
    app = Starlette(
        routes=build_routes(metrics, extra_routes),
        middleware=[Middleware(WebhookFastPath)],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=_lifespan(settings, verifiers, clock, redis, acceptor or replicas_acknowledged(settings),
                           (metrics.observe, *observers), (Admin.resource, *resources)),
    )
    app.router.redirect_slashes = False  # no redirects on this API: `/webhooks/x/` is an unknown route
    app.state.console = console  # for tests that feed the overview's readings
    if from_config:  # the `web:` process itself, not a test
        freeze_startup_heap()
    return app
