"""SegMetrics Import API v1 emulator, under `/segmetrics/api/v1/{account_id}/{integration_id}/...`.

Auth: `Authorization: <api_key>` exactly (a `Bearer` prefix is a wrong key) -> 401
`{"status":"error","errors":["unauthorized"]}`. An unknown account or integration -> 404. Success: 200
`{"status":"success", ...}` (upserts echo the stored object, deletes answer
`{"id":..,"status":"success","object":"contact","deleted":true}`); a missing required field -> 400
`{"status":"error","errors":["missing 'id' field "]}`; a DELETE of an unknown id -> 404
`{"status":"error","errors":["not found"]}`. Data is kept per integration.
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

from sandbox.common import BadBody, Locked, json_body, json_response
from sandbox.credentials import SandboxCredentials

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BILLING_CYCLES = ("year", "month", "week", "day")

Doc = dict[str, Any]


def error_payload(status: int, message: str) -> bytes:
    """The body of an injected fault, shaped like this vendor's errors."""
    return orjson.dumps({"status": "error", "errors": [message]})


def _error(status: int, message: str) -> Response:
    return json_response({"status": "error", "errors": [message]}, status)


def _missing(name: str) -> Response:
    return _error(400, f"missing '{name}' field ")  # sic: the documented message ends with a space


class Invalid(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Integration:
    contacts: dict[str, Doc] = field(default_factory=dict)  # by contact_id, or "email:<email>"
    invoices: dict[str, Doc] = field(default_factory=dict)
    subscriptions: dict[str, Doc] = field(default_factory=dict)
    products: dict[str, Doc] = field(default_factory=dict)
    ad_performance: dict[str, Doc] = field(default_factory=dict)  # by "<ad id>|<date>"


@dataclass
class SegMetricsStore:
    integrations: dict[str, Integration] = field(default_factory=dict)

    def integration(self, integration_id: str) -> Integration:
        return self.integrations.setdefault(integration_id, Integration())

    def snapshot(self) -> dict[str, Any]:
        return {
            iid: {
                "contacts": list(i.contacts.values()),
                "invoices": list(i.invoices.values()),
                "subscriptions": list(i.subscriptions.values()),
                "products": list(i.products.values()),
                "ad_performance": list(i.ad_performance.values()),
            }
            for iid, i in self.integrations.items()
        }


# -- validation helpers ---------------------------------------------------------------------------------


def _require(body: Doc, *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise Invalid(_missing(name))


def _cents(body: Doc, *names: str) -> None:
    for name in names:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(_error(400, f"'{name}' must be an integer amount in cents"))


def _dates(body: Doc, *names: str, pattern: re.Pattern[str] = DATETIME) -> None:
    for name in names:
        value = body.get(name)
        if value is not None and not (isinstance(value, str) and pattern.match(value)):
            raise Invalid(_error(400, f"invalid '{name}' field: expected YYYY-MM-DD HH:MM:SS"))


def _find_contact(integ: Integration, body: Doc) -> tuple[str, Doc] | None:
    if body.get("contact_id") not in (None, ""):
        cid = str(body["contact_id"])
        return (cid, integ.contacts[cid]) if cid in integ.contacts else None
    email = body.get("email")
    for key, contact in integ.contacts.items():
        if email and contact.get("email") == email:
            return key, contact
    return None


def _tag_name(tag: Any) -> str:
    if isinstance(tag, dict):
        return str(tag.get("name") or tag.get("id"))
    return str(tag)


# -- operations (run under the state lock) ------------------------------------------------------------


def upsert_contact(integ: Integration, body: Doc) -> Response:
    if body.get("contact_id") in (None, "") and body.get("email") in (None, ""):
        return _missing("contact_id")
    _dates(body, "date_created", "last_updated")
    if body.get("status") not in (None, "active", "inactive"):
        return _error(400, "invalid 'status' field: expected active or inactive")
    cid = None if body.get("contact_id") in (None, "") else str(body["contact_id"])
    key, existing = None, None
    if cid is not None and cid in integ.contacts:
        key, existing = cid, integ.contacts[cid]
    elif body.get("email"):
        for k, c in integ.contacts.items():
            if c.get("email") == body["email"]:
                key, existing = k, c  # sending a contact_id for a known email re-keys that contact
                break
    contact: Doc = dict(existing or {"status": "active", "tags": [], "custom_fields": {}})
    if key is not None:
        del integ.contacts[key]
    for name, value in body.items():
        if name == "custom_fields" and isinstance(value, dict):
            fields = dict(contact.get("custom_fields") or {})
            for fname, fvalue in value.items():  # merged; null deletes
                if fvalue is None:
                    fields.pop(fname, None)
                else:
                    fields[fname] = fvalue
            contact["custom_fields"] = fields
        elif name == "tags" and isinstance(value, list):
            contact["tags"] = [_tag_name(t) for t in value]  # replaces every tag
        else:
            contact[name] = value
    if cid is not None:
        contact["contact_id"] = cid
    new_key = cid if cid is not None else f"email:{contact['email']}"
    integ.contacts[new_key] = contact
    return json_response({"status": "success", "contact": contact})


def change_tags(integ: Integration, body: Doc, *, add: bool) -> Response:
    if body.get("contact_id") in (None, "") and body.get("email") in (None, ""):
        return _missing("contact_id")
    if not isinstance(body.get("tags"), list):
        return _missing("tags")
    found = _find_contact(integ, body)
    if found is None:
        if not add:
            return json_response({"status": "success"})
        cid = body.get("contact_id")
        key = str(cid) if cid not in (None, "") else f"email:{body['email']}"
        contact: Doc = {"status": "active", "tags": [], "custom_fields": {}}
        if cid not in (None, ""):
            contact["contact_id"] = str(cid)
        if body.get("email"):
            contact["email"] = body["email"]
        integ.contacts[key] = contact
    else:
        contact = found[1]
    names = [_tag_name(t) for t in body["tags"]]
    tags = list(contact.get("tags") or [])
    if add:
        tags += [n for n in names if n not in tags]
    else:
        tags = [t for t in tags if t not in names]
    contact["tags"] = tags
    return json_response({"status": "success"})


def _owner_ok(integ: Integration, body: Doc) -> Response | None:
    if body.get("contact_id") in (None, "") and body.get("email") in (None, ""):
        return _missing("contact_id")
    if body.get("contact_id") not in (None, "") and str(body["contact_id"]) not in integ.contacts:
        # "If contact_id is sent, that contact must already exist"
        return _error(400, f"contact {body['contact_id']} does not exist; send email instead")
    return None


def upsert_invoice(integ: Integration, body: Doc) -> Response:
    _require(body, "id")
    problem = _owner_ok(integ, body)
    if problem is not None:
        return problem
    _require(body, "amount", "paid", "date_created")
    if not isinstance(body.get("items"), list):
        return _missing("items")
    _cents(body, "amount", "paid", "discount", "tax", "shipping")
    _dates(body, "date_created")
    if body.get("is_refunded") not in (None, 0, 1):
        return _error(400, "invalid 'is_refunded' field: expected 0 or 1")
    for n, item in enumerate(body["items"]):
        if not isinstance(item, dict):
            return _error(400, f"item {n} is not an object")
        _require(item, "name", "product_id", "amount")
        _cents(item, "amount")
        pid = str(item["product_id"])
        integ.products.setdefault(pid, {"id": pid, "name": item["name"]})  # unknown products auto-created
    invoice = dict(body)
    invoice["id"] = str(body["id"])
    integ.invoices[invoice["id"]] = invoice
    return json_response({"status": "success", "invoice": invoice})


def upsert_subscription(integ: Integration, body: Doc) -> Response:
    _require(body, "id")
    problem = _owner_ok(integ, body)
    if problem is not None:
        return problem
    _require(body, "amount", "product_id", "start_date", "last_bill_date", "billing_cycle", "frequency")
    _cents(body, "amount")
    _dates(body, "start_date", "last_bill_date", "trial_end_date", "end_date", "canceled_date")
    if body["billing_cycle"] not in BILLING_CYCLES:
        return _error(400, "invalid 'billing_cycle' field: expected year, month, week or day")
    if isinstance(body["frequency"], bool) or not isinstance(body["frequency"], int):
        return _error(400, "invalid 'frequency' field: expected an integer")
    subscription = {"quantity": 1, **body, "id": str(body["id"])}
    integ.subscriptions[subscription["id"]] = subscription
    return json_response({"status": "success", "subscription": subscription})


def upsert_product(integ: Integration, body: Doc) -> Response:
    _require(body, "id", "name")
    product = {**body, "id": str(body["id"])}
    integ.products[product["id"]] = product
    return json_response({"status": "success", "product": product})


def add_ad_performance(integ: Integration, body: Doc) -> Response:
    _require(body, "ad", "spend", "date")
    _cents(body, "spend")
    _dates(body, "date", pattern=DATE)
    ad = body["ad"]
    ad_id = ad.get("id") if isinstance(ad, dict) else ad
    if ad_id in (None, ""):
        return _missing("ad")
    row = dict(body)
    integ.ad_performance[f"{ad_id}|{body['date']}"] = row  # upsert on ad and date
    return json_response({"status": "success"})


def delete(store: dict[str, Doc], ident: str, kind: str) -> Response:
    if ident not in store:
        return _error(404, "not found")
    del store[ident]
    return json_response({"id": ident, "status": "success", "object": kind, "deleted": True})


def delete_contact(integ: Integration, ident: str) -> Response:
    if ident in integ.contacts:
        return delete(integ.contacts, ident, "contact")
    matches = [k for k, c in integ.contacts.items() if c.get("email") == ident]  # by email: every one
    if not matches:
        return _error(404, "not found")
    for key in matches:
        del integ.contacts[key]
    return json_response({"id": ident, "status": "success", "object": "contact", "deleted": True})


# -- HTTP -----------------------------------------------------------------------------------------------


def routes(creds: SandboxCredentials, locked: Locked[SegMetricsStore]) -> list[BaseRoute]:
    Op = Callable[[Integration, Request, Any], Response]

    def endpoint(op: Op, *, with_body: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if request.headers.get("authorization") != creds.segmetrics_api_key:
                return _error(401, "unauthorized")
            integration_id = request.path_params["integration_id"]
            if request.path_params["account_id"] != creds.segmetrics_account_id or integration_id not in (
                creds.segmetrics_integration_id,
                creds.segmetrics_ads_integration_id,
            ):
                return _error(404, "not found")
            body: Any = None
            if with_body:
                try:
                    body = await json_body(request)
                except BadBody as exc:
                    return _error(400, str(exc))
                if not isinstance(body, dict):
                    return _error(400, "the body must be a JSON object")
            try:
                with locked as store:
                    return op(store.integration(integration_id), request, body)
            except Invalid as exc:
                return exc.response

        return handle

    def post(op: Callable[[Integration, Doc], Response]) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(lambda integ, _request, body: op(integ, body), with_body=True)

    def delete_from(attr: str, kind: str) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(
            lambda integ, request, _body: delete(getattr(integ, attr), request.path_params["ident"], kind),
            with_body=False,
        )

    async def not_found(request: Request) -> Response:
        return _error(404, "not found")

    base = "/api/v1/{account_id}/{integration_id}"
    return [
        Route(f"{base}/contact", post(upsert_contact), methods=["POST"]),
        Route(
            f"{base}/contact/{{ident}}",
            endpoint(
                lambda integ, request, _body: delete_contact(integ, request.path_params["ident"]), with_body=False
            ),
            methods=["DELETE"],
        ),
        Route(f"{base}/tags/add", post(lambda i, b: change_tags(i, b, add=True)), methods=["POST"]),
        Route(f"{base}/tags/remove", post(lambda i, b: change_tags(i, b, add=False)), methods=["POST"]),
        Route(f"{base}/invoice", post(upsert_invoice), methods=["POST"]),
        Route(f"{base}/invoice/{{ident}}", delete_from("invoices", "invoice"), methods=["DELETE"]),
        Route(f"{base}/subscription", post(upsert_subscription), methods=["POST"]),
        Route(f"{base}/subscription/{{ident}}", delete_from("subscriptions", "subscription"), methods=["DELETE"]),
        Route(f"{base}/product", post(upsert_product), methods=["POST"]),
        Route(f"{base}/ad/performance", post(add_ad_performance), methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
