"""Salesmachine emulator, under `/salesmachine`.

v1 tracking API (`/v1/contact`, `/v1/account`, `/v1/track/event`, `/v1/batch`, `/v1/ping`): auth by query
`api_token=<token>` or Basic `<token>:<secret>` (or `<token>:`); every credential sent must be right. No
credential -> 400 "incorrect or missing api key", a wrong one -> 401, a body that is not JSON -> 406, a
missing field -> 400. Success: 200 `{"status":"success"}`. Errors:
`{"status":"error","error":"<msg>","code":"<slug>","message":"<msg>"}`.

v2 access API (`/v2/contacts`, `/v2/contacts/{id}`, `/v2/accounts`, `/v2/accounts/{id}`): Basic
`<v2token>:` or `Authorization: Bearer <v2token>`. Lists answer `{"object":"contact.list","data":[...],
"has_more":bool}` and take `limit` (default 10, at most 100), `starting_after=<id>`, `unique_id=<uid>` and
`archived`; `{id}` is Salesmachine's internal id; DELETE answers `{"id":..,"object":"contact","deleted":true}`.
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

from core.clock import Clock, system_clock
from sandbox.common import BadBody, Locked, as_int, bearer, json_body, json_response, parse_basic
from sandbox.credentials import SandboxCredentials

SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
NUMERIC_PARAMS = ("mrr", "churn_mrr")

Doc = dict[str, Any]


def _body(message: str, code: str) -> Doc:
    return {"status": "error", "error": message, "code": code, "message": message}


def error_payload(status: int, message: str) -> bytes:
    """The body of an injected fault, shaped like this vendor's errors."""
    return orjson.dumps(_body(message, f"http_{status}"))


def _error(status: int, message: str, code: str) -> Response:
    return json_response(_body(message, code), status)


SUCCESS = {"status": "success"}


class Invalid(Exception):
    def __init__(self, message: str, code: str = "bad_request", status: int = 400) -> None:
        super().__init__(message)
        self.response = _error(status, message, code)


@dataclass
class SalesmachineStore:
    clock: Clock = system_clock
    contacts: dict[str, Doc] = field(default_factory=dict)  # by unique_id (our contact_uid)
    accounts: dict[str, Doc] = field(default_factory=dict)  # by unique_id (our account_uid)
    events: list[Doc] = field(default_factory=list)
    next_id: int = 1

    def _new_id(self) -> str:
        self.next_id += 1
        return f"5d3b{self.next_id:020x}"

    def _upsert(self, table: dict[str, Doc], kind: str, uid: str, params: Doc) -> Doc:
        record = table.get(uid)
        if record is None:
            record = table[uid] = {
                "object": kind, "id": self._new_id(), "unique_id": uid,
                "created_at": int(self.clock()), "archived": False, "data": {},
            }
        record["data"].update(params)
        return record

    def upsert_contact(self, uid: str, params: Doc) -> Doc:
        return self._upsert(self.contacts, "contact", uid, params)

    def upsert_account(self, uid: str, params: Doc) -> Doc:
        return self._upsert(self.accounts, "account", uid, params)

    def table(self, kind: str) -> dict[str, Doc]:
        return self.contacts if kind == "contact" else self.accounts

    def render(self, record: Doc) -> Doc:
        """A record as the v2 API shows it."""
        out = {k: v for k, v in record.items()}
        out["data"] = dict(record["data"])
        if record["object"] == "contact":
            out["salesmachine"] = {"health": "good"}
            out["stage"] = {"name": "Trial", "id": "stage_trial"}
            account = self.accounts.get(str(record["data"].get("account_uid")))
            out["accounts"] = {"object": "account.list", "data": [{"id": account["id"]}] if account else []}
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "contacts": [self.render(c) for c in self.contacts.values()],
            "accounts": [self.render(a) for a in self.accounts.values()],
            "events": list(self.events),
        }


# -- v1 operations ----------------------------------------------------------------------------------


def _params(body: Doc) -> Doc:
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise Invalid("params must be an object")
    for name in NUMERIC_PARAMS:
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise Invalid(f"{name} must be a number")
    if "churn_date" in params and as_int(params["churn_date"]) is None:
        raise Invalid("churn_date must be a Unix timestamp")
    return params


def _uid(body: Doc, name: str) -> str:
    value = body.get(name)
    if value in (None, ""):
        raise Invalid(f"{name} is required", "missing_parameter")
    return str(value)


def v1_contact(store: SalesmachineStore, body: Doc) -> None:
    store.upsert_contact(_uid(body, "contact_uid"), _params(body))


def v1_account(store: SalesmachineStore, body: Doc) -> None:
    store.upsert_account(_uid(body, "account_uid"), _params(body))


def v1_event(store: SalesmachineStore, body: Doc) -> None:
    contact_uid = _uid(body, "contact_uid")
    event_uid = _uid(body, "event_uid")
    if not SNAKE.match(event_uid):
        raise Invalid("event_uid must be snake_case")
    params = _params(body)
    store.events.append({"contact_uid": contact_uid, "event_uid": event_uid, "params": params})


V1_METHODS: dict[str, Callable[[SalesmachineStore, Doc], None]] = {
    "contact": v1_contact, "account": v1_account, "event": v1_event,
}


def v1_batch(store: SalesmachineStore, body: Any) -> None:
    if not isinstance(body, list):
        raise Invalid("a batch is a JSON array")
    for message in body:  # validate everything first: a batch is taken whole or not at all
        if not isinstance(message, dict) or message.get("method") not in V1_METHODS:
            raise Invalid("each batch message needs a method: contact, account or event")
    for message in body:
        V1_METHODS[message["method"]](store, message)


# -- HTTP -----------------------------------------------------------------------------------------------


def routes(creds: SandboxCredentials, locked: Locked[SalesmachineStore]) -> list[BaseRoute]:

    def v1_auth(request: Request) -> Response | None:
        query_token = request.query_params.get("api_token")
        basic = parse_basic(request.headers.get("authorization"))
        if query_token is None and basic is None:
            return _error(400, "incorrect or missing api key", "missing_api_key")
        if query_token is not None and query_token != creds.salesmachine_api_token:
            return _error(401, "wrong api key", "unauthorized")
        if basic is not None and (
            basic[0] != creds.salesmachine_api_token or basic[1] not in (creds.salesmachine_api_secret, "")
        ):
            return _error(401, "wrong api key", "unauthorized")
        return None

    def v2_auth(request: Request) -> Response | None:
        header = request.headers.get("authorization")
        basic = parse_basic(header)
        token = bearer(header)
        if basic is None and token is None:
            return _error(400, "incorrect or missing api key", "missing_api_key")
        if basic is not None and basic != (creds.salesmachine_api_token_v2, ""):
            return _error(401, "wrong api key", "unauthorized")
        if token is not None and token != creds.salesmachine_api_token_v2:
            return _error(401, "wrong api key", "unauthorized")
        return None

    def v1(op: Callable[[SalesmachineStore, Any], None]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            problem = v1_auth(request)
            if problem is not None:
                return problem
            try:
                body = await json_body(request)
            except BadBody:
                return _error(406, "the body is not JSON", "not_acceptable")
            if op is not v1_batch and not isinstance(body, dict):
                return _error(400, "the body must be a JSON object", "bad_request")
            try:
                with locked as store:
                    op(store, body)
            except Invalid as exc:
                return exc.response
            return json_response(SUCCESS)

        return endpoint

    async def ping(request: Request) -> Response:
        return v1_auth(request) or json_response(SUCCESS)

    def listing(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            problem = v2_auth(request)
            if problem is not None:
                return problem
            q = request.query_params
            limit = as_int(q.get("limit", "10"))
            if limit is None or not 1 <= limit <= 100:
                return _error(400, "limit must be between 1 and 100", "bad_request")
            with locked as store:
                rows = sorted(store.table(kind).values(), key=lambda r: r["id"])
                if "unique_id" in q:
                    rows = [r for r in rows if r["unique_id"] == q["unique_id"]]
                if "archived" in q:
                    wanted = q["archived"].lower() in ("1", "true")
                    rows = [r for r in rows if r["archived"] == wanted]
                if q.get("starting_after"):
                    rows = [r for r in rows if r["id"] > q["starting_after"]]
                page = [store.render(r) for r in rows[:limit]]
            return json_response({"object": f"{kind}.list", "data": page, "has_more": len(rows) > limit})

        return endpoint

    def one(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            problem = v2_auth(request)
            if problem is not None:
                return problem
            internal = request.path_params["id"]
            with locked as store:
                table = store.table(kind)
                uid = next((u for u, r in table.items() if r["id"] == internal), None)
                if uid is None:
                    return _error(404, f"{kind} not found", "not_found")
                if request.method == "DELETE":
                    del table[uid]
                    return json_response({"id": internal, "object": kind, "deleted": True})
                return json_response(store.render(table[uid]))

        return endpoint

    async def not_found(request: Request) -> Response:
        return _error(404, "not found", "not_found")

    async def not_allowed(request: Request) -> Response:
        return _error(405, "method not allowed", "method_not_allowed")

    return [
        Route("/v1/contact", v1(v1_contact), methods=["POST"]),
        Route("/v1/account", v1(v1_account), methods=["POST"]),
        Route("/v1/track/event", v1(v1_event), methods=["POST"]),
        Route("/v1/batch", v1(v1_batch), methods=["POST"]),
        Route("/v1/ping", ping, methods=["GET", "POST"]),
        Route("/v2/contacts", listing("contact"), methods=["GET"]),
        Route("/v2/contacts/{id}", one("contact"), methods=["GET", "DELETE"]),
        Route("/v2/accounts", listing("account"), methods=["GET"]),
        Route("/v2/accounts/{id}", one("account"), methods=["GET", "DELETE"]),
        Route("/v1/{path:path}", not_allowed, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
