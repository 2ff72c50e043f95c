"""Sample events (SPEC section 4), one builder per type; every call returns a fresh dict."""

from __future__ import annotations

import copy
from typing import Any

from cli.samples import (
    CONTACT,  # the contact of SPEC section 4's example, shared with `sluice send`
)

ORDER: dict[str, Any] = {
    "id": "ord_1001",
    "amount_cents": 4999,
    "paid_cents": 4999,
    "currency": "EUR",
    "created_at": "2026-11-24T09:58:30+01:00",
    "refunded": False,
    "items": [
        {"product_id": "sku_1", "name": "Widget", "quantity": 1, "amount_cents": 3999},
        {"product_id": "sku_2", "name": "Shipping", "quantity": 1, "amount_cents": 1000},
    ],
}

SUBSCRIPTION: dict[str, Any] = {
    "id": "sub_9",
    "product_id": "plan_pro",
    "amount_cents": 1900,
    "billing_cycle": "month",
    "frequency": 1,
    "quantity": 1,
    "start_date": "2026-01-01T00:00:00Z",
    "last_bill_date": "2026-11-01T00:00:00Z",
    "trial_end_date": "2026-01-15T00:00:00Z",
    "end_date": None,
}

SEGMENT: dict[str, Any] = {
    "id": "vip",
    "name": "VIP customers",
    "order": 1,
    "group": "Customers",
    "criteria": [{"field": "act", "op": "begins", "value": 12}],
}


def event(kind: str, *, contact: dict[str, Any] | None | bool = True, **data: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "id": f"evt_{kind.replace('.', '_')}",
        "type": kind,
        "occurred_at": "2026-11-24T10:00:00Z",
        "data": copy.deepcopy(data),
    }
    if contact is True:
        ev["contact"] = copy.deepcopy(CONTACT)
    elif contact:
        ev["contact"] = copy.deepcopy(contact)
    return ev


def signup() -> dict[str, Any]:
    return event("signup")


def purchase(*, subscription: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"order": ORDER}
    if subscription:
        data["subscription"] = SUBSCRIPTION
    return event("purchase", **data)


def refund() -> dict[str, Any]:
    order = {k: v for k, v in ORDER.items() if k not in ("currency", "refunded")}
    order["paid_cents"] = 0
    return event("refund", order=order)


def churn() -> dict[str, Any]:
    return event("churn", reason="too_expensive", comment="Price went up", mrr_cents=1900, subscription=SUBSCRIPTION)


def segment_join(segment_id: str = "vip", name: str = "VIP customers") -> dict[str, Any]:
    return event("segment.join", segment={"id": segment_id, "name": name})


def segment_leave(segment_id: str = "vip", name: str = "VIP customers") -> dict[str, Any]:
    return event("segment.leave", segment={"id": segment_id, "name": name})


def segment_upsert(**overrides: Any) -> dict[str, Any]:
    return event("segment.upsert", contact=None, segment={**SEGMENT, **overrides})


def segment_delete(segment_id: str = "vip") -> dict[str, Any]:
    return event("segment.delete", contact=None, segment={"id": segment_id})


def contact_delete() -> dict[str, Any]:
    return event("contact.delete")


def ad_performance() -> dict[str, Any]:
    return event(
        "ad.performance",
        contact=None,
        date="2026-11-23",
        ad={"id": "ad_1", "name": "Winter sale"},
        campaign={"id": "cmp_1", "name": "Winter"},
        adset={"id": "set_1", "name": "Lookalikes"},
        spend_cents=12345,
        impressions=10000,
        clicks=321,
    )
