"""SegMetrics Import API v1: `{base_url}/{account_id}/{integration_id}/{path}`, raw `Authorization: <api_key>`,
JSON bodies, success = 200 `{"status": "success", ...}`.

Decisions (vendors.md "Decisions for sluice"): dates `YYYY-MM-DD HH:MM:SS` in UTC; tags only through
`tags/add` / `tags/remove`; tags, invoices and subscriptions name the contact by `email` when the event has
one, else by `contact_id` (an invoice naming a `contact_id` that SegMetrics does not know yet is refused, an
email is matched later); `ad/performance` goes to `ads_integration_id` when configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from config.settings import SegMetricsSettings
from core.clock import Clock, system_clock
from core.ordering import event_tags
from handlers.base import Call, VendorClient, message_from_json
from handlers.fields import Event, compact, contact, get, need, parse_time

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


# -- pure payload builders ----------------------------------------------------------------------------


def sm_date(value: Any) -> str:
    """An RFC 3339 time as SegMetrics wants it: `YYYY-MM-DD HH:MM:SS` in UTC."""
    return parse_time(value).strftime(DATE_FORMAT)


def _sm_date_or_none(value: Any) -> str | None:
    return None if value in (None, "") else sm_date(value)


def contact_key(event: Event) -> dict[str, str]:
    """How tags, invoices and subscriptions name the contact: by email when known, else by contact_id."""
    person = contact(event)
    if person.get("email"):
        return {"email": str(person["email"])}
    return {"contact_id": str(need(event, "contact.id"))}


def contact_body(event: Event) -> dict[str, Any]:
    """`POST contact`: keyed by contact_id (which wins over email). A signup sets `date_created`; any other
    event only `last_updated`, so that re-sending a contact never moves its creation date. A churn marks the
    contact inactive. Tags are never sent here (the field replaces all tags); see `tags_body`."""
    person = contact(event)
    when = sm_date(need(event, "occurred_at"))
    body: dict[str, Any] = compact(
        {
            "contact_id": str(need(event, "contact.id")),
            "email": person.get("email") or None,
            "first_name": person.get("first_name") or None,
            "last_name": person.get("last_name") or None,
            "status": "inactive" if event.get("type") == "churn" else "active",
        }
    )
    body["date_created" if event.get("type") == "signup" else "last_updated"] = when
    if person.get("custom_fields"):
        body["custom_fields"] = dict(person["custom_fields"])
    return body


def tags_body(event: Event) -> dict[str, Any] | None:
    """`POST tags/add` and `tags/remove`; None when the event has no tag to send."""
    tags = event_tags(event)
    if not tags:
        return None
    return {**contact_key(event), "tags": tags}


def invoice_body(event: Event) -> dict[str, Any]:
    """`POST invoice` from `data.order`: amounts stay integer cents; a refund event (or an order marked
    refunded) sets `is_refunded` 1; `date_created` is the order's `created_at`, else `occurred_at`."""
    order = need(event, "data.order")
    amount = need(event, "data.order.amount_cents")
    refunded = event.get("type") == "refund" or bool(order.get("refunded"))
    items = [
        compact(
            {
                "name": item.get("name"),
                "product_id": None if item.get("product_id") is None else str(item["product_id"]),
                "amount": item.get("amount_cents"),
            }
        )
        for item in order.get("items") or []
    ]
    return {
        **contact_key(event),
        "id": str(need(event, "data.order.id")),
        "amount": amount,
        "paid": order.get("paid_cents", amount),
        "is_refunded": 1 if refunded else 0,
        "date_created": sm_date(order.get("created_at") or need(event, "occurred_at")),
        "items": items,
    }


def subscription_body(event: Event) -> dict[str, Any]:
    """`POST subscription` from `data.subscription`; a churn adds `canceled_date` = occurred_at."""
    sub = need(event, "data.subscription")
    body = compact(
        {
            **contact_key(event),
            "id": str(need(event, "data.subscription.id")),
            "amount": sub.get("amount_cents"),
            "product_id": None if sub.get("product_id") is None else str(sub["product_id"]),
            "start_date": _sm_date_or_none(sub.get("start_date")),
            "last_bill_date": _sm_date_or_none(sub.get("last_bill_date")),
            "billing_cycle": sub.get("billing_cycle"),
            "frequency": sub.get("frequency"),
            "quantity": sub.get("quantity"),
            "trial_end_date": _sm_date_or_none(sub.get("trial_end_date")),
            "end_date": _sm_date_or_none(sub.get("end_date")),
        }
    )
    if event.get("type") == "churn":
        body["canceled_date"] = sm_date(need(event, "occurred_at"))
    return body


def _named(node: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not node or node.get("id") is None:
        return None
    return compact({"id": str(node["id"]), "name": node.get("name")})


def ad_performance_body(event: Event) -> dict[str, Any]:
    """`POST ad/performance`: the ad, its campaign and ad set as `{id, name}` objects, spend in cents."""
    need(event, "data.ad.id")
    data = event["data"]
    return compact(
        {
            "ad": _named(data["ad"]),
            "adcampaign": _named(data.get("campaign")),
            "adset": _named(data.get("adset")),
            "spend": need(event, "data.spend_cents"),
            "date": str(need(event, "data.date")),
            "clicks": data.get("clicks"),
            "impressions": data.get("impressions"),
        }
    )


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


# -- the client -----------------------------------------------------------------------------------------


class SegMetricsClient(VendorClient):
    vendor = "segmetrics"

    def __init__(self, cfg: SegMetricsSettings, http: httpx.AsyncBaseTransport, *, clock: Clock = system_clock) -> None:
        key = cfg.api_key.get_secret_value()
        super().__init__(
            http,
            f"{cfg.base_url.rstrip('/')}/{_segment(cfg.account_id)}",
            headers={"Authorization": key},
            secrets=(key,),
            clock=clock,
        )
        self.integration_id = _segment(cfg.integration_id)
        self.ads_integration_id = _segment(cfg.ads_integration_id or cfg.integration_id)

    def error_detail(self, text: str) -> str | None:
        return message_from_json(text, "errors", "error", "message")

    async def _post(self, call: Call, path: str, body: Mapping[str, Any], *, ads: bool = False) -> None:
        integration = self.ads_integration_id if ads else self.integration_id
        response = await self.fetch(call, "POST", f"/{integration}/{path}", json=body)
        self.json_object(response, success=True)

    async def _delete(self, call: Call, path: str) -> None:
        response = await self.send(call, "DELETE", f"/{self.integration_id}/{path}", missing_ok=True)
        if response is not None:  # None: 404, already gone
            self.json_object(response, success=True)

    async def upsert_contact(self, event: Event, call: Call) -> None:
        await self._post(call, "contact", contact_body(event))

    async def delete_contact(self, event: Event, call: Call) -> None:
        """By contact_id (the key sluice upserts with); deleting by email would take every contact that
        shares the address."""
        await self._delete(call, f"contact/{_segment(need(event, 'contact.id'))}")

    async def add_tags(self, event: Event, call: Call) -> None:
        body = tags_body(event)
        if body is not None:  # nothing to add is done
            await self._post(call, "tags/add", body)

    async def remove_tags(self, event: Event, call: Call) -> None:
        body = tags_body(event)
        if body is not None:
            await self._post(call, "tags/remove", body)

    async def upsert_invoice(self, event: Event, call: Call) -> None:
        await self._post(call, "invoice", invoice_body(event))

    async def delete_invoice(self, event: Event, call: Call) -> None:
        await self._delete(call, f"invoice/{_segment(need(event, 'data.order.id'))}")

    async def upsert_subscription(self, event: Event, call: Call) -> None:
        await self._post(call, "subscription", subscription_body(event))

    async def delete_subscription(self, event: Event, call: Call) -> None:
        await self._delete(call, f"subscription/{_segment(need(event, 'data.subscription.id'))}")

    async def add_ad_performance(self, event: Event, call: Call) -> None:
        await self._post(call, "ad/performance", ad_performance_body(event), ads=True)
