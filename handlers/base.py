"""What every vendor client shares: base URL, auth, headers, the time budget of one operation, and the ONE
translation of HTTP outcomes into the error taxonomy of `core.errors`.

A vendor client sends requests through `VendorClient.send`, which either returns a 2xx `httpx.Response`
(or `None` for "absent", a 404 on a delete), or raises `TransientError` / `PermanentError`. Response bodies
are then read with `json_body` / `ndjson_rows`, which turn an answer the client cannot understand into a
`PermanentError` instead of a crash. Error bodies are surfaced as text, never assumed to be JSON, and every
configured secret is scrubbed from messages and bodies before they leave this module.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import importlib.metadata
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import orjson

from core.clock import Clock, system_clock
from core.errors import BODY_LIMIT, DeliveryError, PermanentError, TransientError

TRANSIENT_STATUSES = frozenset({408, 425, 429})
"""4xx statuses worth another try; every 5xx is transient as well (SPEC section 5, rule 3)."""

REDACTED = "[redacted]"

Params = Sequence[tuple[str, str]] | Mapping[str, str] | None


@functools.cache
def user_agent() -> str:
    """`sluice/<version>` of the installed distribution."""
    try:
        version = importlib.metadata.version("sluice")
    except importlib.metadata.PackageNotFoundError:  # running from a bare checkout
        version = "0"
    return f"sluice/{version}"


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """`url` parsed once: httpx parses a URL string on every request (~12 us, a tenth of a vendor call's CPU),
    and a vendor's calls go to a handful of endpoints. URLs are immutable, so one serves every request.
    Query parameters are not cached with it: some carry a contact's email, which must not outlive the call."""
    return httpx.URL(url)


class Deadline:
    """The total time budget of one operation; every request of the operation takes what is left."""

    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._end = monotonic() + seconds

    def remaining(self) -> float:
        return self._end - self._monotonic()


@dataclass(slots=True)
class Call:
    """One vendor operation in flight: its idempotency key, its time budget, and the last status it got."""

    idempotency_key: str
    deadline: Deadline
    last_status: int | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A `Retry-After` header as seconds to wait from `now` (Unix seconds): delta-seconds or an HTTP-date.

    None when absent or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        return None
    return max(0.0, when.timestamp() - now)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def php_urlencode(text: str) -> str:
    """PHP's `urlencode` (RFC 1738, what `http_build_query` applies to every key and value): UTF-8 bytes,
    `A-Z a-z 0-9 . _ -` kept, a space as `+`, everything else `%XX` in upper case. Python's `quote_plus`
    differs only in keeping `~`, which PHP encodes."""
    return urllib.parse.quote_plus(text, safe="").replace("~", "%7E")


def form_encode(pairs: Iterable[tuple[str, str]]) -> str:
    """`application/x-www-form-urlencoded` byte for byte as PHP's `http_build_query` (PHP_QUERY_RFC1738)
    writes it, brackets of PHP arrays included: `criteria[0][op]=begins` -> `criteria%5B0%5D%5Bop%5D=begins`.
    Every body and query string a vendor client sends is encoded here."""
    return "&".join(f"{php_urlencode(key)}={php_urlencode(value)}" for key, value in pairs)


def with_query(url: httpx.URL, params: Params) -> httpx.URL:
    """`url` with `params` appended to its query, encoded by `form_encode` (httpx's own encoder differs)."""
    if not params:
        return url
    pairs = params.items() if isinstance(params, Mapping) else params
    query = form_encode(pairs)
    if url.query:
        query = f"{url.query.decode('ascii')}&{query}"
    return url.copy_with(query=query.encode("ascii"))


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def body_text(response: httpx.Response, secrets: Iterable[str] = ()) -> str:
    """The first 2 KiB of a response body as text, whatever its encoding claims, secrets scrubbed (before
    cutting, so that no part of a secret survives at the edge)."""
    head = response.content[: BODY_LIMIT * 4].decode("utf-8", errors="replace")
    return scrub(head, secrets)[:BODY_LIMIT]


def classify(
    response: httpx.Response,
    *,
    vendor: str,
    now: float,
    missing_ok: bool = False,
    detail: Callable[[str], str | None] = lambda _: None,
    secrets: Iterable[str] = (),
) -> bool:
    """The one mapping of an HTTP status to the taxonomy.

    Returns True for a 2xx, False for a 404 when `missing_ok` (a delete of something already gone);
    raises TransientError for 408/425/429/5xx (with `retry_after` from the header) and PermanentError for
    everything else. `detail` pulls the vendor's own error message out of the body text, if it can."""
    status = response.status_code
    if 200 <= status < 300:
        return True
    if status == 404 and missing_ok:
        return False
    text = body_text(response, secrets)
    method = response.request.method
    path = response.request.url.path  # never the query: it may carry credentials
    message = f"{vendor} answered {status} to {method} {path}"
    try:
        extra = detail(text)
    except Exception:  # a vendor message we cannot read is no reason to lose the status
        extra = None
    if extra:
        message = f"{message}: {scrub(str(extra), secrets)[:300]}"
    if status in TRANSIENT_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        raise TransientError(message, status=status, body=text, retry_after=retry_after)
    raise PermanentError(message, status=status, body=text)


def classify_exception(
    exc: httpx.HTTPError | httpx.InvalidURL, *, vendor: str, method: str, path: str
) -> DeliveryError:
    """A transport-level failure (no usable response) as a DeliveryError: network trouble is transient,
    a request that can never be sent (bad URL, unsupported scheme) is permanent."""
    where = f"{method} {path}"
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{vendor}: {where} timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)):
        return PermanentError(f"{vendor}: {where} cannot be sent ({type(exc).__name__})")
    if isinstance(exc, httpx.DecodingError):
        return PermanentError(f"{vendor}: {where} answered a body that cannot be decoded")
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentError(f"{vendor}: {where} redirected too often")
    # ConnectError, ReadError, WriteError, RemoteProtocolError (connection dropped), ProxyError, ...
    return TransientError(f"{vendor}: {where} failed on the network ({type(exc).__name__})")


def _url_path(url: str, fallback: str) -> str:
    """The path of a URL (never its query, which may carry credentials)."""
    try:
        return httpx.URL(url).path
    except httpx.InvalidURL:
        return fallback


def not_understood(vendor: str, response: httpx.Response, what: str, secrets: Iterable[str] = ()) -> PermanentError:
    """A 2xx whose body is not what the vendor documents."""
    path = response.request.url.path
    return PermanentError(
        f"{vendor} answered {response.status_code} to {response.request.method} {path} "
        f"with a body sluice cannot understand: {what}",
        status=response.status_code,
        body=body_text(response, secrets),
    )


class VendorClient:
    """Base of the four vendor clients: one place that builds URLs and headers, applies the time budget,
    sends, and classifies.

    Requests go straight to an httpx transport (`handlers.transport.VendorTransport` in the worker), not
    through `httpx.AsyncClient`: everything the client adds on top (cookies, auth flows, redirects, merged
    defaults) sluice does not use, and it cost ~30 % of the CPU of a call (bench/README.md)."""

    vendor: ClassVar[str] = "vendor"

    def __init__(
        self,
        http: httpx.AsyncBaseTransport,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        clock: Clock = system_clock,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.secrets = tuple(s for s in secrets if s)
        self.clock = clock

    def error_detail(self, text: str) -> str | None:
        """The vendor's own error message from an error body, when it has one (overridden per vendor)."""
        return None

    async def send(
        self,
        call: Call,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        form: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """One request. Returns the 2xx response, or None for a 404 when `missing_ok`; raises otherwise."""
        remaining = call.deadline.remaining()
        if remaining <= 0:
            raise TransientError(f"{self.vendor}: {method} {path} not sent, the time budget of "
                                 f"{call.deadline.seconds:g}s is used up")
        all_headers = {
            "User-Agent": user_agent(),
            "Idempotency-Key": call.idempotency_key,
            "Accept": "application/json",
            **self.headers,
            **(headers or {}),
        }
        content: bytes | None = None
        if json is not None:
            content = orjson.dumps(json)
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            content = form_encode(form).encode("ascii")
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = f"{self.base_url}{path}"
        try:
            request = httpx.Request(
                method,
                with_query(parsed_url(url), params),
                content=content,
                headers=all_headers,
                extensions={"timeout": httpx.Timeout(remaining).as_dict()},
            )
            response = await self.http.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = classify_exception(exc, vendor=self.vendor, method=method, path=_url_path(url, path))
            raise self._scrubbed(error) from None
        call.last_status = response.status_code
        found = classify(
            response,
            vendor=self.vendor,
            now=self.clock(),
            missing_ok=missing_ok,
            detail=self.error_detail,
            secrets=self.secrets,
        )
        return response if found else None

    async def fetch(self, call: Call, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`send` for requests where a 404 is an error like any other: always a 2xx response."""
        response = await self.send(call, method, path, **kwargs)
        assert response is not None  # only missing_ok sends answer None
        return response

    def _scrubbed(self, error: DeliveryError) -> DeliveryError:
        error.message = scrub(error.message, self.secrets)
        error.args = (error.message,)
        return error

    # -- reading 2xx bodies -------------------------------------------------------------------------

    def json_body(self, response: httpx.Response) -> Any:
        """The JSON document of a 2xx answer; PermanentError when it is empty or not JSON."""
        if not response.content.strip():
            raise not_understood(self.vendor, response, "an empty body where JSON is due", self.secrets)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise not_understood(self.vendor, response, "not JSON", self.secrets) from None

    def json_object(self, response: httpx.Response, *, success: bool = False) -> dict[str, Any]:
        """A JSON object; with `success`, one whose `status` is "success" (the vendors' documented answer)."""
        body = self.json_body(response)
        if not isinstance(body, dict):
            raise not_understood(self.vendor, response, f"a JSON {type(body).__name__} where an object is due",
                                 self.secrets)
        if success and body.get("status") != "success":
            raise not_understood(self.vendor, response, f"status {body.get('status')!r} instead of 'success'",
                                 self.secrets)
        return body

    def ndjson_rows(self, response: httpx.Response) -> list[dict[str, Any]]:
        """Newline-delimited JSON objects; an empty body is no rows."""
        rows: list[dict[str, Any]] = []
        for line in response.content.splitlines():
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise not_understood(self.vendor, response, "a line that is not JSON", self.secrets) from None
            if not isinstance(row, dict):
                raise not_understood(self.vendor, response, "a line that is not a JSON object", self.secrets)
            rows.append(row)
        return rows


def message_from_json(text: str, *paths: str) -> str | None:
    """The first readable message at one of the dotted `paths` of a JSON error body (lists are joined);
    None when the body is not JSON or has none of them."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    for dotted in paths:
        node: Any = body
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, list):
            node = "; ".join(str(item).strip() for item in node)
        if isinstance(node, (str, int)) and str(node).strip():
            return str(node).strip()
    return None
