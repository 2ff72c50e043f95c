"""Reading an event (SPEC section 4) for the payload builders: pure helpers that say clearly, as a
PermanentError, when an operation was routed an event that lacks what it needs (e.g. a `[routes]` row that
sends `signup` to `segmetrics.upsert_invoice`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from core.errors import PermanentError

Event = Mapping[str, Any]


def need(event: Event, dotted: str) -> Any:
    """The value at `a.b.c`, or a PermanentError naming the missing field."""
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, "", [], {}):
            raise PermanentError(f"a {event.get('type')!r} event without {dotted} cannot be sent by this operation")
        node = node[part]
    return node


def get(event: Event, dotted: str, default: Any = None) -> Any:
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return default
        node = node[part]
    return node


def contact(event: Event) -> Mapping[str, Any]:
    value = need(event, "contact")
    if not isinstance(value, Mapping):
        raise PermanentError("contact is not an object")
    return value


def full_name(person: Mapping[str, Any]) -> str | None:
    """First and last name joined by one space; None when neither is known."""
    parts = [str(person[k]).strip() for k in ("first_name", "last_name") if person.get(k)]
    name = " ".join(p for p in parts if p)
    return name or None


def parse_time(value: Any) -> datetime:
    """An RFC 3339 time (or a bare YYYY-MM-DD, taken as midnight UTC) as an aware datetime in UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
        except ValueError:
            raise PermanentError(f"{value!r} is not an RFC 3339 time") from None
    else:
        raise PermanentError(f"{value!r} is not an RFC 3339 time")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def unix_seconds(value: Any) -> int:
    return int(parse_time(value).timestamp())


def cents_to_units(cents: Any) -> int | float:
    """Cents as currency units, a JSON number: 9900 -> 99, 4999 -> 49.99."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise PermanentError(f"amount {cents!r} is not an integer number of cents")
    return cents // 100 if cents % 100 == 0 else cents / 100


def compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without its None values (absent optional fields are omitted, not sent as null)."""
    return {k: v for k, v in mapping.items() if v is not None}
