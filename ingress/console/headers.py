"""The console's response headers, and its one log line per request.

Every answer under /console gets a strict Content-Security-Policy (only this origin's own script and style,
nothing inline, no framing), `Cache-Control: no-store` (pages show dead letters and events: no copy is kept by
a browser or proxy), `nosniff`, no referrer to other sites. The session cookie is marked Secure when the
request came over HTTPS.
"""

from __future__ import annotations

import time

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress.console.auth import SESSION_COOKIE

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class ConsoleHeaders:
    """Adds the headers above to every console response and logs one `console` line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("sluice.console")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if https:
                    secure_session_cookie(headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # path only: a query string holds filters, and never anything secret, but stays out of the log
            self.log.info("console", method=scope["method"], path=scope["path"], status=status,
                          duration_ms=round((time.perf_counter() - started) * 1000, 3))


def secure_session_cookie(headers: MutableHeaders) -> None:
    cookies = headers.getlist("set-cookie")
    if not any(c.startswith(f"{SESSION_COOKIE}=") for c in cookies):
        return
    del headers["set-cookie"]
    for cookie in cookies:
        headers.append("set-cookie", f"{cookie}; secure" if cookie.startswith(f"{SESSION_COOKIE}=") else cookie)
