"""Which vendor operations an event becomes (SPEC section 5): the operation names, the default routing
table, and the pure `plan` that applies it to one event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Event = Mapping[str, Any]

VENDORS: tuple[str, ...] = ("segmetrics", "salesmachine", "personaclick", "infinity")

OPERATIONS: Mapping[str, tuple[str, ...]] = {
    "segmetrics": (
        "upsert_contact", "delete_contact", "add_tags", "remove_tags", "upsert_invoice", "delete_invoice",
        "upsert_subscription", "delete_subscription", "add_ad_performance",
    ),
    "salesmachine": (
        "upsert_contact", "upsert_account", "track_event", "list_contacts", "get_contact", "delete_contact",
        "list_accounts", "get_account", "delete_account",
    ),
    "personaclick": ("add_to_segment", "remove_from_segment", "list_segments", "purge_profile"),
    "infinity": (
        "list_segments", "get_segment", "upsert_segment", "order_segments", "delete_segment",
        "list_segment_groups", "get_segment_group", "ensure_segment_group", "update_segment_group",
        "delete_segment_group",
    ),
}

EVENT_TYPES: tuple[str, ...] = (
    "signup", "purchase", "refund", "churn", "segment.join", "segment.leave", "segment.upsert",
    "segment.delete", "contact.delete", "ad.performance",
)

DEFAULT_ROUTES: Mapping[str, tuple[str, ...]] = {
    "signup": (
        "segmetrics.upsert_contact", "segmetrics.add_tags",
        "salesmachine.upsert_account", "salesmachine.upsert_contact", "salesmachine.track_event",
    ),
    "purchase": ("segmetrics.upsert_invoice", "segmetrics.upsert_subscription", "salesmachine.track_event"),
    "refund": ("segmetrics.upsert_invoice", "salesmachine.track_event"),
    "churn": (
        "segmetrics.add_tags", "segmetrics.upsert_subscription",
        "salesmachine.upsert_contact", "salesmachine.track_event",
    ),
    "segment.join": ("segmetrics.add_tags", "salesmachine.track_event", "personaclick.add_to_segment"),
    "segment.leave": ("segmetrics.remove_tags", "salesmachine.track_event", "personaclick.remove_from_segment"),
    "segment.upsert": ("infinity.upsert_segment",),
    "segment.delete": ("infinity.delete_segment",),
    "contact.delete": ("segmetrics.delete_contact", "salesmachine.delete_contact", "personaclick.purge_profile"),
    "ad.performance": ("segmetrics.add_ad_performance",),
}


def _has_account(event: Event) -> bool:
    return bool((event.get("contact") or {}).get("account"))


def _has_tags(event: Event) -> bool:
    # churn adds the fixed tag "churned"; signup adds the contact's own tags, if any
    return event.get("type") == "churn" or bool((event.get("contact") or {}).get("tags"))


def _has_subscription(event: Event) -> bool:
    return bool((event.get("data") or {}).get("subscription"))


# Rows of the default table that say "if any" / "if present": a call whose input is absent is not planned.
_APPLIES: Mapping[str, Callable[[Event], bool]] = {
    "salesmachine.upsert_account": _has_account,
    "segmetrics.add_tags": lambda e: e.get("type") != "signup" or _has_tags(e),
    "segmetrics.upsert_subscription": _has_subscription,
}


def is_operation(name: str) -> bool:
    vendor, _, operation = name.partition(".")
    return operation in OPERATIONS.get(vendor, ())


def plan(event: Event, routes: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """The (vendor, operation) calls of one event, in table order; `routes` is the effective table."""
    calls = []
    for name in routes.get(str(event.get("type")), ()):
        applies = _APPLIES.get(name)
        if applies is None or applies(event):
            vendor, _, operation = name.partition(".")
            calls.append((vendor, operation))
    return calls
