"""PersonaClick emulator, under `/personaclick`.

Parameters may come as JSON, a form, or the query string (merged). Auth as PersonaClick's error matrix:
no `shop_id` -> 401; a `shop_id` that is not 30 hex characters -> 422; an unknown shop -> 404 "Shop not
found"; a missing or wrong `shop_secret` -> 403. A missing required parameter -> 400. Errors are
`{"status":"error","message":"..."}`.

Segments are pre-seeded (they cannot be created through the API): 100500 and 100501 (static), 100502
(dynamic). An unknown `segment_id` -> 404 "Segment not found". `POST /segments/add|remove` answer
`{"status":"success"}` and are idempotent; `GET /segments/get` answers a bare array
`[{"id":100500,"type":"static"}]`; `/segments/includes` a bare `true`/`false`; `POST /profile/set` upserts a
profile; `DELETE /profile/purge` erases it (404 "Profile not found" when there is none).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.common import BadBody, Locked, as_int, json_response, merged_params
from sandbox.credentials import SandboxCredentials

SHOP_ID = re.compile(r"^[0-9a-f]{30}$")
IDENTIFIERS = ("email", "phone", "external_id", "loyalty_id", "telegram_id")
PROFILE_FIELDS = ("first_name", "last_name", "gender", "birthday", "location")
SEEDED_SEGMENTS = {100500: "static", 100501: "static", 100502: "dynamic"}

Doc = dict[str, Any]
SUCCESS = {"status": "success"}


def error_payload(status: int, message: str) -> bytes:
    """The body of an injected fault, shaped like this vendor's errors."""
    return orjson.dumps({"status": "error", "message": message})


def _error(status: int, message: str) -> Response:
    return json_response({"status": "error", "message": message}, status)


def _seeded() -> dict[int, Doc]:
    return {sid: {"id": sid, "type": kind, "members": set()} for sid, kind in SEEDED_SEGMENTS.items()}


@dataclass
class PersonaClickStore:
    segments: dict[int, Doc] = field(default_factory=_seeded)  # id -> {id, type, members: set of profile ids}
    profiles: dict[int, Doc] = field(default_factory=dict)
    next_profile: int = 1

    def add_segment(self, sid: int, kind: str = "static") -> None:
        """A segment made in the dashboard (the API cannot make one); an existing one is left alone."""
        self.segments.setdefault(sid, {"id": sid, "type": kind, "members": set()})

    def find(self, params: Doc) -> list[int]:
        """Ids of the profiles any given identifier points at."""
        found = []
        for pid, profile in self.profiles.items():
            if any(params.get(k) not in (None, "") and str(params[k]) == profile.get(k) for k in IDENTIFIERS):
                found.append(pid)
        return found

    def ensure(self, params: Doc) -> int:
        found = self.find(params)
        if found:
            pid = found[0]
        else:
            pid = self.next_profile
            self.next_profile += 1
            self.profiles[pid] = {"id": pid}
        profile = self.profiles[pid]
        for key in IDENTIFIERS:
            if params.get(key) not in (None, ""):
                profile[key] = str(params[key])
        return pid

    def segments_of(self, pid: int) -> list[Doc]:
        return [{"id": s["id"], "type": s["type"]} for s in self.segments.values() if pid in s["members"]]

    def snapshot(self) -> dict[str, Any]:
        return {
            "segments": [
                {"id": s["id"], "type": s["type"], "members": sorted(s["members"])} for s in self.segments.values()
            ],
            "profiles": list(self.profiles.values()),
        }


class Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, message)


def _identified(params: Doc) -> None:
    if not any(params.get(k) not in (None, "") for k in IDENTIFIERS):
        raise Invalid(400, "email or phone is required")


def _segment(store: PersonaClickStore, params: Doc) -> Doc:
    if params.get("segment_id") in (None, ""):
        raise Invalid(400, "segment_id is required")
    sid = as_int(params["segment_id"])
    if sid is None or sid not in store.segments:
        raise Invalid(404, "Segment not found")
    return store.segments[sid]


def add(store: PersonaClickStore, params: Doc) -> Response:
    segment = _segment(store, params)
    _identified(params)
    if segment["type"] != "static":
        raise Invalid(400, "only static segments can be changed")
    segment["members"].add(store.ensure(params))  # already there: not added again
    return json_response(SUCCESS)


def remove(store: PersonaClickStore, params: Doc) -> Response:
    segment = _segment(store, params)
    _identified(params)
    if segment["type"] != "static":
        raise Invalid(400, "only static segments can be changed")
    for pid in store.find(params):  # not in the segment: no error
        segment["members"].discard(pid)
    return json_response(SUCCESS)


def get_segments(store: PersonaClickStore, params: Doc) -> Response:
    _identified(params)
    rows: list[Doc] = []
    for pid in store.find(params):
        rows += [r for r in store.segments_of(pid) if r not in rows]
    return json_response(rows)


def includes(store: PersonaClickStore, params: Doc) -> Response:
    segment = _segment(store, params)
    _identified(params)
    return json_response(any(pid in segment["members"] for pid in store.find(params)))


def set_profile(store: PersonaClickStore, params: Doc) -> Response:
    _identified(params)
    profile = store.profiles[store.ensure(params)]
    skip = {"shop_id", "shop_secret", "did", *IDENTIFIERS}
    profile.update({k: v for k, v in params.items() if k not in skip})
    return json_response(SUCCESS)


def purge(store: PersonaClickStore, params: Doc) -> Response:
    _identified(params)
    found = store.find(params)
    if not found:
        raise Invalid(404, "Profile not found")
    for pid in found:
        del store.profiles[pid]
        for segment in store.segments.values():
            segment["members"].discard(pid)
    return json_response(SUCCESS)


# -- HTTP -----------------------------------------------------------------------------------------------


def routes(creds: SandboxCredentials, locked: Locked[PersonaClickStore]) -> list[BaseRoute]:

    def auth(params: Doc) -> Response | None:
        shop_id = params.get("shop_id")
        if shop_id in (None, ""):
            return _error(401, "shop_id is required")
        if not SHOP_ID.match(str(shop_id)):
            return _error(422, "shop_id is malformed")
        if str(shop_id) != creds.personaclick_shop_id:
            return _error(404, "Shop not found")
        if params.get("shop_secret") != creds.personaclick_shop_secret:
            return _error(403, "request was unsuccessful: shop_secret is missing or wrong")
        return None

    def endpoint(op: Callable[[PersonaClickStore, Doc], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                params = await merged_params(request)
            except BadBody as exc:
                return _error(400, str(exc))
            problem = auth(params)
            if problem is not None:
                return problem
            try:
                with locked as store:
                    return op(store, params)
            except Invalid as exc:
                return exc.response

        return handle

    known = [
        Route("/segments/add", endpoint(add), methods=["POST"]),
        Route("/segments/remove", endpoint(remove), methods=["POST"]),
        Route("/segments/get", endpoint(get_segments), methods=["GET", "POST"]),
        Route("/segments/includes", endpoint(includes), methods=["GET", "POST"]),
        Route("/profile/set", endpoint(set_profile), methods=["POST"]),
        Route("/profile/purge", endpoint(purge), methods=["DELETE"]),
    ]
    paths = {route.path for route in known}

    async def fallback(request: Request) -> Response:
        if "/" + request.path_params["path"] in paths:
            return _error(405, "method not allowed")
        return _error(404, "not found")

    return [*known, Route("/{path:path}", fallback, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
