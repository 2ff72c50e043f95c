"""What the emulators share: request parsing, response helpers, and `Locked`, the way an emulator reaches
its vendor's data."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

S = TypeVar("S")

_PHP_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PHP_PART = re.compile(r"\[([^\[\]]*)\]")


class Locked(Generic[S]):
    """One vendor's store as its emulator reaches it: `with store as data:` holds the sandbox's lock (the
    server's thread and a test's thread share the data) and gives the store current at that moment (a reset
    of the sandbox replaces it). The state builds these from its stores; the emulators never see the state."""

    def __init__(self, lock: threading.RLock, current: Callable[[], S]) -> None:
        self._lock = lock
        self._current = current

    def __enter__(self) -> S:
        self._lock.acquire()
        return self._current()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class BadBody(Exception):
    """A request body the emulator cannot read (the vendor's answer depends on the vendor)."""


def php_parse(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """PHP's reading of form / query pairs: `a[0][b]=1&c[]=2&c[]=3` -> {"a": [{"b": "1"}], "c": ["2", "3"]}.
    A plain key given twice keeps the last value, as PHP does."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _PHP_KEY.match(key)
        if match is None:
            root[key] = value
            continue
        parts = [match.group(1), *_PHP_PART.findall(match.group(2))]
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return {key: _listify(value) for key, value in root.items()}  # the top level stays a mapping


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def is_json(request: Request) -> bool:
    return "json" in request.headers.get("content-type", "").lower()


def is_form(request: Request) -> bool:
    return "x-www-form-urlencoded" in request.headers.get("content-type", "").lower()


async def json_body(request: Request) -> Any:
    """The JSON body; BadBody when it is not JSON (whatever the content type says)."""
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadBody("the body is not JSON") from None


async def merged_params(request: Request) -> dict[str, Any]:
    """Query string, form body and JSON body merged (in that order of precedence, last wins), PHP arrays
    unfolded. BadBody for a JSON body that does not parse or is not an object."""
    raw = await request.body()
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    json_part: dict[str, Any] = {}
    if raw.strip():
        if is_form(request):
            pairs += parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        elif is_json(request) or raw.lstrip()[:1] in (b"{", b"["):
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BadBody("the body is not JSON") from None
            if not isinstance(parsed, dict):
                raise BadBody("the JSON body is not an object")
            json_part = parsed
        else:
            pairs += parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    params = php_parse(pairs)
    params.update(json_part)
    return params


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header; None when there is none or it is garbled."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer(header: str | None, scheme: str = "bearer") -> str | None:
    if not header:
        return None
    prefix, _, token = header.partition(" ")
    return token.strip() if prefix.lower() == scheme and token.strip() else None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def ndjson_response(rows: Iterable[Any], status: int = 200) -> Response:
    body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    return Response(body, status_code=status, media_type="application/json")


def as_int(value: Any) -> int | None:
    """An integer from JSON or a form string; None when it is not one (booleans are not integers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None
