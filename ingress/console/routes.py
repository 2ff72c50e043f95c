"""The console's URL map under /console, and `screen`, the wrapper every route goes through: it finds the
console and the admin objects, sends a visitor without a session to the login page (and back afterwards),
refuses a state-changing request without a valid CSRF token from this origin (403), and turns a Redis
failure into a 503 page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from redis.exceptions import RedisError
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ingress.console import actions, pages
from ingress.console.auth import SESSION_COOKIE, SESSION_MAX_AGE, csrf_problem, logged_in, session_key
from ingress.console.headers import ConsoleHeaders
from ingress.console.render import STATIC, message

if TYPE_CHECKING:
    from ingress.admin import Admin
    from ingress.console import Console

MAX_FORM_BYTES = 64 * 1024
"""The console's forms are a few fields; a larger body (the login form is open to anyone) is not read."""

Handler = Callable[[Request, "Console", "Admin"], Awaitable[Response]]


def screen(handler: Handler, *, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        console: Console = request.state.console
        if not public and not logged_in(request.session):
            return to_login(request, console)
        if request.method == "POST":
            length = request.headers.get("content-length", "")
            if length.isascii() and length.isdigit() and int(length) > MAX_FORM_BYTES:
                return message(console.templates, request, 413, "Refused", "That form is far too large.")
            problem = await csrf_problem(request)
            if problem:
                return message(console.templates, request, 403, "Refused", f"Nothing was changed: {problem}.")
        try:
            return await handler(request, console, request.state.admin)
        except (RedisError, OSError):
            return message(console.templates, request, 503, "Redis is unavailable",
                           "The console could not reach Redis. Nothing was changed; try again shortly.")

    return endpoint


def to_login(request: Request, console: Console) -> Response:
    """GET: to the login page, which comes back here afterwards. A self-refreshing fragment (htmx) is told to
    load the login page instead. Anything else is refused: a form posted without a session changes nothing."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/console/login?{urlencode({'next': target})}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": login})
    if request.method == "GET":
        return RedirectResponse(login, status_code=303)
    return message(console.templates, request, 403, "Refused", "Your session has ended: nothing was changed. "
                   "Log in again.")


def console_mount(path: str, admin_token: str) -> Mount:
    routes = [
        Route("/", screen(pages.overview), methods=["GET"]),
        Route("/login", screen(actions.login_page, public=True), methods=["GET"]),
        Route("/login", screen(actions.log_in, public=True), methods=["POST"]),
        Route("/logout", screen(actions.log_out), methods=["POST"]),
        Route("/dead-letters", screen(pages.dead_letters), methods=["GET"]),
        Route("/dead-letters/{id}", screen(pages.dead_letter), methods=["GET"]),
        Route("/dead-letters/{id}/replay", screen(actions.replay_one), methods=["POST"]),
        Route("/dead-letters/{id}/purge", screen(pages.purge_page), methods=["GET"]),
        Route("/dead-letters/{id}/purge", screen(actions.purge), methods=["POST"]),
        Route("/events", screen(pages.find_event), methods=["GET"]),
        Route("/events/{source}/{event_id}", screen(pages.event), methods=["GET"]),
        Route("/events/{source}/{event_id}/calls", screen(pages.event_calls), methods=["GET"]),
        Route("/replay", screen(actions.bulk_page), methods=["GET"]),
        Route("/replay", screen(actions.bulk_start), methods=["POST"]),
        Route("/replay/{run_id}", screen(actions.bulk_progress), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    middleware = [
        Middleware(ConsoleHeaders),
        Middleware(SessionMiddleware, secret_key=session_key(admin_token), session_cookie=SESSION_COOKIE,
                   max_age=SESSION_MAX_AGE, path=path, same_site="strict"),
    ]
    return Mount(path, routes=routes, middleware=middleware)
