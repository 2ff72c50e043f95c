"""The operator console (SPEC section 7): web pages at /console to see and repair delivery.

Server-rendered (Jinja2), no build step; the one script is htmx (vendored, pinned, checksummed) for the pages
that refresh themselves. Everything goes through the admin API's own objects (`request.state.admin`: its
dead-letter store, its bulk replays) and the same event view; the console keeps nothing in Redis of its own.
No admin token configured: nothing is mounted and /console answers 404, like /admin.

    auth.py      session key, login check, CSRF and origin checks
    headers.py   CSP, no-store and the other response headers; one log line per request
    routes.py    the URL map and the wrapper that checks the session, CSRF and Redis errors
    pages.py     the screens that only read: overview, dead letters, one letter, one event
    actions.py   what changes something: log in/out, replay, purge, bulk replay
    forms.py     query strings and forms to filters, cursors and clear problems
    figures.py   the overview's figures (fleet readings, calls per minute, last accepted per source)
    chart.py     calls per minute as inline SVG geometry
    render.py    the templates and their filters
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.routing import BaseRoute

from config.settings import Settings
from core.clock import Clock
from ingress.console.figures import CallHistory, sampling
from ingress.console.render import build_templates
from ingress.console.routes import console_mount
from ingress.state import IngressState

PATH = "/console"


class Console:
    """The console's parts for the ingress app (`build` gives None without an admin token): its mount and its
    lifespan resource. Found by its routes at `request.state.console`."""

    def __init__(self, settings: Settings, clock: Clock, admin_token: str) -> None:
        self.settings = settings
        self.clock = clock
        self.admin_token = admin_token.encode()
        self.templates = build_templates()
        self.history = CallHistory()

    @classmethod
    def build(cls, settings: Settings, clock: Clock) -> Console | None:
        token = settings.ingress.admin_token
        return None if token is None else cls(settings, clock, token.get_secret_value())

    def routes(self) -> list[BaseRoute]:
        return [console_mount(PATH, self.admin_token.decode())]

    @contextlib.asynccontextmanager
    async def resource(self, state: IngressState) -> AsyncIterator[dict[str, Any]]:
        """The ingress lifespan's hook: `request.state.console`, and the minute readings of the call counters."""
        async with sampling(self.history, state.redis, state.keys, state.clock):
            yield {"console": self}
