"""Realistic sample events of every type (SPEC section 4), for `sluice send`, the demo and the benchmarks."""

from __future__ import annotations

import uuid
from typing import Any

from core.clock import rfc3339

CONTACT: dict[str, Any] = {
    "id": "cus_42",
    "email": "ada@example.com",
    "phone": "+4400114527199",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "account": {"id": "acc_7", "name": "Acme", "domain": "acme.io"},
    "tags": ["newsletter"],
    "custom_fields": {"plan": "pro"},
}

def numbered_contact(n: int) -> dict[str, Any]:
    """The sample contact made the n-th person: own id, email and phone (vendors match on either)."""
    return {**CONTACT, "id": f"cus_{n}", "email": f"person{n}@example.com", "phone": f"+4400{n:010d}"}


ORDER: dict[str, Any] = {
    "id": "ord_1001", "amount_cents": 4500, "paid_cents": 4500, "currency": "USD",
    "created_at": "2026-11-24T10:00:00Z", "refunded": False,
    "items": [{"product_id": "sku_1556", "name": "Round Tuit", "quantity": 1, "amount_cents": 4500}],
}

SUBSCRIPTION: dict[str, Any] = {
    "id": "sub_9", "product_id": "sku_pro", "amount_cents": 2900, "billing_cycle": "month", "frequency": 1,
    "quantity": 1, "start_date": "2026-01-01T00:00:00Z", "last_bill_date": "2026-11-01T00:00:00Z",
    "trial_end_date": None, "end_date": None,
}

SEGMENT: dict[str, Any] = {"id": "vip", "name": "VIP customers"}


def sample_data(event_type: str) -> tuple[dict[str, Any], bool]:
    """(data, has_contact) of a sample event of `event_type`; KeyError for an unknown type."""
    return {
        "signup": ({}, True),
        "purchase": ({"order": ORDER, "subscription": SUBSCRIPTION}, True),
        "refund": ({"order": {**ORDER, "paid_cents": 0, "refunded": True}}, True),
        "churn": ({"reason": "too_expensive", "comment": "Moving to a cheaper plan", "mrr_cents": 2900,
                   "subscription": {**SUBSCRIPTION, "end_date": "2026-11-24T10:00:00Z"}}, True),
        "segment.join": ({"segment": SEGMENT}, True),
        "segment.leave": ({"segment": SEGMENT}, True),
        "segment.upsert": ({"segment": {**SEGMENT, "order": 1, "group": "Customers",
                                        "criteria": [{"field": "act", "op": "begins", "value": "12"}]}}, False),
        "segment.delete": ({"segment": {"id": "vip"}}, False),
        "contact.delete": ({}, True),
        "ad.performance": ({"date": "2026-11-23", "ad": {"id": "ad_1", "name": "Winter sale"},
                            "campaign": {"id": "cmp_1", "name": "Winter"}, "adset": {"id": "as_1", "name": "UK"},
                            "spend_cents": 12345, "impressions": 10000, "clicks": 321}, False),
    }[event_type]


def sample_event(event_type: str, now: float, event_id: str | None = None) -> dict[str, Any]:
    data, has_contact = sample_data(event_type)
    event: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:20]}",
        "type": event_type,
        "occurred_at": rfc3339(now),
        "data": data,
    }
    if has_contact:
        event["contact"] = CONTACT
    return event
