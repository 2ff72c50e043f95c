"""What each vendor call changes, as pure data (SPEC section 5 rule 8), and the order of events.

Every call belongs to a *scope*: the contact `(source, contact.id)` for events about a person, the segment
definition for `segment.upsert` / `segment.delete`, none for ad performance. At one vendor, the calls of one
scope go one at a time. A call also names the *subjects* it writes (a contact's tag, an order's invoice, ...):
`SUBJECTS` maps each operation to the kind of thing it writes, `None` for calls that only add a fact (or only
read), which are never superseded by another fact. A call whose subject the vendor already has from a later
event is superseded; a `contact.delete` fences every call of the contact from an earlier event, facts too.

An event's version is `(occurred_at in ms, clamped to at most tolerance_seconds after its arrival, the
ingress's acceptance sequence number)`; versions are compared as pairs of integers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.clock import parse_rfc3339

Event = Mapping[str, Any]

FENCING_TYPE = "contact.delete"
"""Accepting an event of this type fences its contact: every call of an earlier event of it is superseded."""


def event_tags(event: Event) -> list[str]:
    """The tags an event adds or removes at SegMetrics: `churned` for a churn, the segment's name (its id when
    it has no name) for segment.join / segment.leave, otherwise the contact's own tags."""
    kind = event.get("type")
    if kind == "churn":
        return ["churned"]
    if kind in ("segment.join", "segment.leave"):
        segment = event["data"]["segment"]
        return [str(segment.get("name") or segment["id"])]
    return [str(tag) for tag in (event.get("contact") or {}).get("tags") or ()]


def _data(event: Event, name: str) -> Mapping[str, Any]:
    return (event.get("data") or {}).get(name) or {}


# What a subject kind names in one event: the thing's own key, one string per thing the call writes.
_SUBJECT_KEYS: Mapping[str, Callable[[Event], list[str]]] = {
    "contact": lambda e: ["contact"],
    "account": lambda e: [f"account:{(e.get('contact') or {})['account']['id']}"],
    "tag": lambda e: [f"tag:{tag}" for tag in event_tags(e)],
    "invoice": lambda e: [f"invoice:{_data(e, 'order')['id']}"],
    "subscription": lambda e: [f"subscription:{_data(e, 'subscription')['id']}"],
    "membership": lambda e: [f"membership:{_data(e, 'segment')['id']}"],
    "segment": lambda e: ["definition"],
    "segment_group": lambda e: [f"group:{_data(e, 'segment')['group']}"],
}

SUBJECTS: Mapping[str, str | None] = {
    "segmetrics.upsert_contact": "contact",
    "segmetrics.delete_contact": "contact",
    "segmetrics.add_tags": "tag",
    "segmetrics.remove_tags": "tag",
    "segmetrics.upsert_invoice": "invoice",
    "segmetrics.delete_invoice": "invoice",
    "segmetrics.upsert_subscription": "subscription",
    "segmetrics.delete_subscription": "subscription",
    "segmetrics.add_ad_performance": None,
    "salesmachine.upsert_contact": "contact",
    "salesmachine.delete_contact": "contact",
    "salesmachine.upsert_account": "account",
    "salesmachine.delete_account": "account",
    "salesmachine.track_event": None,
    "salesmachine.list_contacts": None,
    "salesmachine.get_contact": None,
    "salesmachine.list_accounts": None,
    "salesmachine.get_account": None,
    "personaclick.add_to_segment": "membership",
    "personaclick.remove_from_segment": "membership",
    "personaclick.purge_profile": "contact",
    "personaclick.list_segments": None,
    "infinity.upsert_segment": "segment",
    "infinity.delete_segment": "segment",
    "infinity.ensure_segment_group": "segment_group",
    "infinity.update_segment_group": "segment_group",
    "infinity.delete_segment_group": "segment_group",
    "infinity.order_segments": None,
    "infinity.list_segments": None,
    "infinity.get_segment": None,
    "infinity.list_segment_groups": None,
    "infinity.get_segment_group": None,
}
"""`vendor.operation` -> the kind of thing it writes (None: it only adds a fact, or reads)."""


@dataclass(frozen=True, slots=True)
class Ordered:
    """How rule 8 applies to one call: its scope (None: no order to keep) and the subjects it writes."""

    scope: str | None
    subjects: tuple[str, ...]


def scope_of(event: Event) -> str | None:
    """`contact:<id>` for an event about a person, `segment:<id>` for a segment definition, else None."""
    contact = event.get("contact")
    if isinstance(contact, Mapping) and contact.get("id") is not None:
        return f"contact:{contact['id']}"
    segment = _data(event, "segment")
    if event.get("type") in ("segment.upsert", "segment.delete") and segment.get("id") is not None:
        return f"segment:{segment['id']}"
    return None


def ordered(event: Event, vendor: str, operation: str) -> Ordered:
    """The scope and subjects of one call of `event`. Subjects are prefixed with the vendor: the state of a
    thing is kept per vendor. A call whose subject cannot be read from the event (its data does not fit the
    operation; the vendor client then refuses it) writes no subject."""
    scope = scope_of(event)
    kind = SUBJECTS.get(f"{vendor}.{operation}")
    if scope is None or kind is None:
        return Ordered(scope, ())
    try:
        keys = _SUBJECT_KEYS[kind](event)
    except (KeyError, TypeError, AttributeError):
        keys = []
    return Ordered(scope, tuple(f"{vendor}|{key}" for key in keys))


def version_ms(event: Event, received: float, tolerance_seconds: float) -> int:
    """The event's time for ordering, in ms: `occurred_at`, at most `tolerance_seconds` after `received`, so
    that a platform clock far in the future cannot freeze a contact."""
    try:
        occurred = parse_rfc3339(str(event["occurred_at"]))
    except (KeyError, ValueError):
        occurred = received
    return int(min(occurred, received + tolerance_seconds) * 1000)

