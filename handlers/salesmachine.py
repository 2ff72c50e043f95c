"""Salesmachine: the v1 tracking API (contact, account, track/event) and the v2 access API (list, get and
delete contacts and accounts).

Decisions (vendors.md): v1 sends auth both ways at once, query `api_token=<token>` and Basic
`<token>:<secret>`; v2 sends Basic `<api_token_v2>:`. `mrr` / `churn_mrr` are currency units (cents / 100, a
JSON number), `churn_date` Unix seconds, `event_uid` the snake_case event name with `params.display_name`
its human form and `params.account_uid` when the contact has an account.

v2 addresses a contact or account by Salesmachine's internal id, so get and delete first look the record up
by its `unique_id` (our contact / account id) in the list: `GET /v2/contacts?unique_id=<uid>&limit=100`,
following `has_more` with `starting_after=<last id>` (the list envelope is Stripe-like), and keeping only
rows whose `unique_id` really matches, in case a server ignores the filter. A delete of a record that is not
there is done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from config.settings import SalesmachineSettings
from core.clock import Clock, system_clock
from core.errors import PermanentError
from handlers.base import Call, VendorClient, basic_auth_header, form_encode, message_from_json, not_understood
from handlers.fields import Event, cents_to_units, compact, contact, full_name, get, need, unix_seconds

EVENT_UIDS: Mapping[str, str] = {
    "signup": "signup",
    "purchase": "purchase",
    "refund": "refund",
    "churn": "churn",
    "segment.join": "segment_join",
    "segment.leave": "segment_leave",
}

V2_OPERATIONS = frozenset(
    {"list_contacts", "get_contact", "delete_contact", "list_accounts", "get_account", "delete_account"}
)
"""Operations of the v2 access API: they need `api_token_v2`."""

LOOKUP_PAGE = 100
LOOKUP_MAX_PAGES = 20


# -- pure payload builders ----------------------------------------------------------------------------


def event_uid(event_type: str) -> str:
    """The snake_case event name: `segment.join` -> `segment_join`."""
    return EVENT_UIDS.get(event_type) or re.sub(r"[^a-z0-9]+", "_", event_type.lower()).strip("_")


def display_name(uid: str) -> str:
    """The human form of an event_uid: `segment_join` -> `Segment join`."""
    return uid.replace("_", " ").capitalize()


def _account_uid(event: Event) -> str | None:
    account_id = get(event, "contact.account.id")
    return None if account_id is None else str(account_id)


def churn_params(event: Event) -> dict[str, Any]:
    """The reserved churn fields of a churn event."""
    data = event.get("data") or {}
    mrr = data.get("mrr_cents")
    return compact(
        {
            "churn_date": unix_seconds(need(event, "occurred_at")),
            "churn_mrr": None if mrr is None else cents_to_units(mrr),
            "churn_reason": data.get("reason") or None,
            "churn_comment": data.get("comment") or None,
        }
    )


def contact_body(event: Event) -> dict[str, Any]:
    """`POST /v1/contact`: the contact's custom fields as custom attributes, then the reserved fields
    (`name` = first + last, `email`, `account_uid`, and for a churn `churn_*`), which win over them."""
    person = contact(event)
    params: dict[str, Any] = dict(person.get("custom_fields") or {})
    params.update(
        compact(
            {
                "name": full_name(person),
                "email": person.get("email") or None,
                "account_uid": _account_uid(event),
            }
        )
    )
    if event.get("type") == "churn":
        params.update(churn_params(event))
    return {"contact_uid": str(need(event, "contact.id")), "params": params}


def account_body(event: Event) -> dict[str, Any]:
    """`POST /v1/account` from `contact.account`."""
    account = need(event, "contact.account")
    return {
        "account_uid": str(need(event, "contact.account.id")),
        "params": compact({"name": account.get("name") or None, "domain": account.get("domain") or None}),
    }


def track_event_body(event: Event) -> dict[str, Any]:
    """`POST /v1/track/event`. Besides `display_name` and `account_uid`, a few event facts travel as custom
    properties: the order (id, amount in currency units, currency), the segment (id, name), the churn
    reason."""
    uid = event_uid(str(need(event, "type")))
    data = event.get("data") or {}
    params: dict[str, Any] = {"display_name": display_name(uid)}
    params.update(compact({"account_uid": _account_uid(event)}))
    order = data.get("order")
    if isinstance(order, Mapping):
        params.update(
            compact(
                {
                    "order_id": None if order.get("id") is None else str(order["id"]),
                    "amount": None if order.get("amount_cents") is None else cents_to_units(order["amount_cents"]),
                    "currency": order.get("currency"),
                }
            )
        )
    segment = data.get("segment")
    if isinstance(segment, Mapping):
        params.update(
            compact(
                {
                    "segment_id": None if segment.get("id") is None else str(segment["id"]),
                    "segment_name": segment.get("name"),
                }
            )
        )
    if event.get("type") == "churn" and data.get("reason"):
        params["churn_reason"] = data["reason"]
    return {"contact_uid": str(need(event, "contact.id")), "event_uid": uid, "params": params}


# -- the client -----------------------------------------------------------------------------------------


class SalesmachineClient(VendorClient):
    vendor = "salesmachine"

    def __init__(
        self, cfg: SalesmachineSettings, http: httpx.AsyncBaseTransport, *, clock: Clock = system_clock
    ) -> None:
        token = cfg.api_token.get_secret_value()
        secret = cfg.api_secret.get_secret_value()
        token_v2 = cfg.api_token_v2.get_secret_value()
        self._v1_auth = basic_auth_header(token, secret)
        self._v2_auth = basic_auth_header(token_v2, "") if token_v2 else ""
        # a constant query string in the path (not `params`): the whole URL is then parsed once per endpoint
        self._v1_query = "?" + form_encode([("api_token", token)])
        self.has_v2 = bool(token_v2)
        super().__init__(
            http,
            cfg.base_url,
            secrets=(token, secret, token_v2, self._v1_auth.split()[1],
                     self._v2_auth.split()[1] if token_v2 else ""),
            clock=clock,
        )

    def error_detail(self, text: str) -> str | None:
        return message_from_json(text, "message", "error", "code")

    # -- v1 -----------------------------------------------------------------------------------------

    async def _v1(self, call: Call, path: str, body: Mapping[str, Any]) -> None:
        response = await self.fetch(
            call, "POST", path + self._v1_query, json=body,
            headers={"Authorization": self._v1_auth},
        )
        self.json_object(response, success=True)

    async def upsert_contact(self, event: Event, call: Call) -> None:
        await self._v1(call, "/v1/contact", contact_body(event))

    async def upsert_account(self, event: Event, call: Call) -> None:
        await self._v1(call, "/v1/account", account_body(event))

    async def track_event(self, event: Event, call: Call) -> None:
        await self._v1(call, "/v1/track/event", track_event_body(event))

    # -- v2 -----------------------------------------------------------------------------------------

    def _v2_headers(self) -> dict[str, str]:
        if not self.has_v2:
            raise PermanentError("salesmachine api_token_v2 is not configured; v2 operations cannot run")
        return {"Authorization": self._v2_auth}

    async def _list_page(
        self, call: Call, kind: str, params: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], bool]:
        response = await self.fetch(call, "GET", f"/v2/{kind}s", params=params, headers=self._v2_headers())
        body = self.json_object(response)
        rows, has_more = body.get("data"), body.get("has_more", False)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not isinstance(has_more, bool):
            raise not_understood(self.vendor, response, f"not a {kind}.list envelope", self.secrets)
        return rows, has_more

    async def _lookup(self, call: Call, kind: str, unique_id: str) -> str | None:
        """Salesmachine's internal id of the record whose unique_id is ours; None when there is none."""
        params = [("unique_id", unique_id), ("limit", str(LOOKUP_PAGE))]
        for _ in range(LOOKUP_MAX_PAGES):
            rows, has_more = await self._list_page(call, kind, params)
            for row in rows:
                if str(row.get("unique_id")) == unique_id and row.get("id") is not None:
                    return str(row["id"])
            if not has_more or not rows or rows[-1].get("id") is None:
                return None
            params = [("unique_id", unique_id), ("limit", str(LOOKUP_PAGE)), ("starting_after", str(rows[-1]["id"]))]
        raise PermanentError(f"salesmachine: no {kind} with unique_id {unique_id} in {LOOKUP_MAX_PAGES} pages")

    async def _list(self, call: Call, kind: str) -> None:
        await self._list_page(call, kind, [("limit", str(LOOKUP_PAGE))])

    async def _get(self, call: Call, kind: str, unique_id: str) -> None:
        internal = await self._lookup(call, kind, unique_id)
        if internal is None:
            raise PermanentError(f"salesmachine has no {kind} with unique_id {unique_id}", status=404)
        response = await self.fetch(
            call, "GET", f"/v2/{kind}s/{quote(internal, safe='')}", headers=self._v2_headers()
        )
        self.json_object(response)

    async def _delete(self, call: Call, kind: str, unique_id: str) -> None:
        internal = await self._lookup(call, kind, unique_id)
        if internal is None:
            return  # absent: done
        response = await self.send(
            call, "DELETE", f"/v2/{kind}s/{quote(internal, safe='')}", headers=self._v2_headers(), missing_ok=True
        )
        if response is not None and response.content.strip():
            body = self.json_object(response)
            if body.get("deleted") is False:
                raise not_understood(self.vendor, response, "deleted is false", self.secrets)

    async def list_contacts(self, event: Event, call: Call) -> None:
        await self._list(call, "contact")

    async def get_contact(self, event: Event, call: Call) -> None:
        await self._get(call, "contact", str(need(event, "contact.id")))

    async def delete_contact(self, event: Event, call: Call) -> None:
        await self._delete(call, "contact", str(need(event, "contact.id")))

    async def list_accounts(self, event: Event, call: Call) -> None:
        await self._list(call, "account")

    async def get_account(self, event: Event, call: Call) -> None:
        await self._get(call, "account", str(need(event, "contact.account.id")))

    async def delete_account(self, event: Event, call: Call) -> None:
        await self._delete(call, "account", str(need(event, "contact.account.id")))
