"""Who may use the console, and which requests may change something.

**Session.** Logging in with the admin token (compared in constant time) sets `auth` in Starlette's signed
session cookie (`SessionMiddleware`: HttpOnly, SameSite=Strict, path /console, 12 hours). The signing key is
derived from the admin token (HMAC-SHA256 of a fixed label under it), never the token itself, and the cookie
never carries the token: every ingress process of a fleet accepts the same sessions (a per-process random key
would log an operator out whenever a load balancer picked another process, and at every restart), and changing
the admin token ends every session at once.

**CSRF.** Every state-changing request carries the session's random token (form field `csrf` or header
`X-CSRF-Token`), compared in constant time, and must come from the console's own origin: an `Origin` header
must name this host, and a browser's `Sec-Fetch-Site` must say `same-origin`. A client that sends neither
header (curl) still needs the token, which only a logged-in session's pages show.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION_COOKIE = "sluice_console"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_KEY_LABEL = b"sluice console session signing key v1"


def session_key(admin_token: str) -> str:
    """The session cookie's signing key: a one-way function of the admin token."""
    return hmac.new(admin_token.encode(), _KEY_LABEL, hashlib.sha256).hexdigest()


def token_matches(given: str, admin_token: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), admin_token)


def logged_in(session: Mapping[str, Any]) -> bool:
    return session.get("auth") is True


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use (the login form has one before anyone logs in)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def log_in(session: dict[str, Any]) -> None:
    """A fresh session: nothing carried over from before the login, a new CSRF token."""
    session.clear()
    session["auth"] = True
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def origin_problem(headers: Mapping[str, str]) -> str | None:
    """Why a state-changing request is not from this site's own pages, or None when it may be."""
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"the request came from another site (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None:
        # the scheme is not compared, so a TLS-terminating proxy in front of plain-HTTP uvicorn still works
        if origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
            return "the request came from another origin"
    return None


async def csrf_problem(request: Request) -> str | None:
    """Why a state-changing request must be refused (403), or None."""
    problem = origin_problem(request.headers)
    if problem:
        return problem
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    expected = request.session.get(CSRF_FIELD)
    if not given or not isinstance(expected, str) or not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode()):
        return "the form's CSRF token is missing or out of date; reload the page and try again"
    return None


def safe_next(target: str | None, default: str) -> str:
    """Where to go after logging in: only a path inside the console, never another site."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
