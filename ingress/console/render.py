"""Rendering console pages: one Jinja2 environment per app (autoescaping every template, strict about
undefined names), the filters the templates use, and the page/message helpers the routes answer with."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from core.clock import parse_rfc3339
from ingress.console.auth import csrf_token, logged_in

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
HTMX = "htmx-2.0.11.min.js"
EXCERPT = 2000
"""Characters of a vendor's response body shown on a dead letter's page."""


def when(value: float | str | None) -> str:
    """A Unix time or an RFC 3339 string as `2026-11-24 10:00:00 UTC`; an unreadable string as it is."""
    if value is None or value == "":
        return "—"
    try:
        ts = parse_rfc3339(value) if isinstance(value, str) else float(value)
    except ValueError:
        return str(value)
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    """JSON indented for reading (escaped by the template like any other text)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    text = "" if value is None else value if isinstance(value, str) else pretty(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template: event and vendor text always arrives as text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, pretty=pretty, excerpt=excerpt)
    env.globals.update(htmx=HTMX)
    return Jinja2Templates(env=env)


def render(templates: Jinja2Templates, request: Request, name: str, context: dict[str, Any] | None = None,
           status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A page; every page knows the session's CSRF token (its forms post it) and whether someone is logged in."""
    base = {"csrf": csrf_token(request.session), "signed_in": logged_in(request.session), "notice": None}
    return templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status,
                                      headers=headers)


def message(templates: Jinja2Templates, request: Request, status: int, title: str, *lines: str) -> Response:
    """A plain page saying what went wrong (a bad filter, an unknown id, a refused request, Redis down)."""
    return render(templates, request, "message.html", {"title": title, "lines": lines}, status=status)
