"""The hot path of event validation: the schema of `core.events` as msgspec structs, checked in one compiled pass.

`accepts(obj)` says only whether a parsed JSON object is a valid event of SPEC section 4; it never names a bad
field. `core.events.validate_event` asks it first and returns at once on yes (about half of pydantic's cost
for a purchase, bench/README.md); on no, the pydantic models decide and name every bad field. So a wrong "no"
here costs time, never an answer; a wrong "yes" would let a bad event in, which is why both schemas take their
rules from `core.event_fields` and `tests/test_events.py` runs every one of its cases, and hypothesis's random
ones, through both, failing on any disagreement.

msgspec is given the object orjson parsed, never the body: it would keep the last of duplicate keys silently
(as orjson does) and take a `\u0000` as any character, so refusing those stays `core.events._parse`'s job, and
its tagged-union conversion of a dict costs five times the struct's own (the struct is looked up by `type`).

The structs mirror the models field by field: strict types (no "12" for 12, no 12.0 or true for an integer),
unknown fields ignored (the caller keeps the object as sent), one struct per `type`. Patterns are checked by
msgspec itself; the real-date checks that a pattern cannot make run in `__post_init__`, with the same
functions the models use. The contact rule (email or phone) is `core.events`'s, applied after either.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from core import event_fields as fields


def _pattern(kind: str) -> Any:
    pattern, _problem, max_length = fields.PATTERNS[kind]
    return Annotated[str, Meta(max_length=max_length, pattern=fields.anchored(pattern))]


EventId = _pattern("event_id")
Slug = _pattern("slug")
Email = _pattern("email")
Phone = _pattern("phone")
Currency = _pattern("currency")
EntityId = Union[Annotated[str, Meta(min_length=1, max_length=fields.MAX_ENTITY_ID)], int]  # noqa: UP007
Name = Annotated[str, Meta(min_length=1, max_length=fields.MAX_NAME)]
Cents = Annotated[int, Meta(ge=0, le=fields.MAX_CENTS)]
Count = Annotated[int, Meta(ge=0, le=fields.MAX_CENTS)]
Frequency = Annotated[int, Meta(ge=1, le=fields.MAX_FREQUENCY)]
Timestamp = Annotated[str, Meta(pattern=fields.anchored(fields.RFC3339))]
Day = Annotated[str, Meta(pattern=fields.anchored(fields.DATE))]
DateLike = Annotated[str, Meta(pattern=fields.anchored(fields.DATE_LIKE))]


def _dates(*values: str | None) -> None:
    """The real-date checks a pattern cannot make (the patterns are the fields' types)."""
    for value in values:
        if value is not None and not fields.real_date_or_time(value):
            raise ValueError("not a real date")


# kw_only on every struct (msgspec applies it per class, not to subclasses): required fields may follow optional ones

# ---- parts -----------------------------------------------------------------------------------------------


class Account(msgspec.Struct, kw_only=True):
    id: EntityId
    name: str | None = None
    domain: str | None = None


class Contact(msgspec.Struct, kw_only=True):
    id: EntityId
    email: Email | None = None
    phone: Phone | None = None
    first_name: str | None = None
    last_name: str | None = None
    account: Account | None = None
    tags: list[Name] | None = None
    custom_fields: dict[str, Any] | None = None


class Item(msgspec.Struct, kw_only=True):
    product_id: EntityId
    name: str | None = None
    quantity: Count | None = None
    amount_cents: Cents


class Order(msgspec.Struct, kw_only=True):
    id: EntityId
    amount_cents: Cents
    paid_cents: Cents | None = None
    currency: Currency | None = None
    created_at: DateLike | None = None
    refunded: bool | None = None
    items: list[Item] | None = None

    def __post_init__(self) -> None:
        _dates(self.created_at)


class Subscription(msgspec.Struct, kw_only=True):
    id: EntityId
    product_id: EntityId | None = None
    amount_cents: Cents | None = None
    billing_cycle: Literal["year", "month", "week", "day"] | None = None
    frequency: Frequency | None = None
    quantity: Count | None = None
    start_date: DateLike | None = None
    last_bill_date: DateLike | None = None
    trial_end_date: DateLike | None = None
    end_date: DateLike | None = None

    def __post_init__(self) -> None:
        _dates(self.start_date, self.last_bill_date, self.trial_end_date, self.end_date)


class NamedRef(msgspec.Struct, kw_only=True):
    id: EntityId
    name: str | None = None


class Segment(msgspec.Struct, kw_only=True):
    id: EntityId
    name: Name


class Criterion(msgspec.Struct, kw_only=True):
    field: Name
    op: Name
    value: Any = None


class SegmentDefinition(msgspec.Struct, kw_only=True):
    id: EntityId
    name: Name
    order: Count | None = None
    group: str | None = None
    criteria: list[Criterion] | None = None


class SegmentRef(msgspec.Struct, kw_only=True):
    id: EntityId


# ---- data of each type -----------------------------------------------------------------------------------


class NoData(msgspec.Struct, kw_only=True):
    pass


class PurchaseData(msgspec.Struct, kw_only=True):
    order: Order
    subscription: Subscription | None = None


class RefundData(msgspec.Struct, kw_only=True):
    order: Order


class ChurnData(msgspec.Struct, kw_only=True):
    reason: Slug | None = None
    comment: str | None = None
    mrr_cents: Cents | None = None
    subscription: Subscription | None = None


class SegmentData(msgspec.Struct, kw_only=True):
    segment: Segment


class SegmentUpsertData(msgspec.Struct, kw_only=True):
    segment: SegmentDefinition


class SegmentDeleteData(msgspec.Struct, kw_only=True):
    segment: SegmentRef


class AdPerformanceData(msgspec.Struct, kw_only=True):
    date: Day
    ad: NamedRef
    campaign: NamedRef | None = None
    adset: NamedRef | None = None
    spend_cents: Cents
    impressions: Count | None = None
    clicks: Count | None = None

    def __post_init__(self) -> None:
        if not fields.real_day(self.date):  # one date: the direct check, not `_dates`'s loop and dispatch
            raise ValueError("not a real date")


# ---- events ----------------------------------------------------------------------------------------------


class _Base(msgspec.Struct, kw_only=True, tag_field="type"):
    id: EventId
    occurred_at: Timestamp

    def __post_init__(self) -> None:
        if not fields.real_time(self.occurred_at):  # one time: the direct check, as for the ad's date
            raise ValueError("not a real time")


class _WithContact(_Base, kw_only=True):
    contact: Contact


class Signup(_WithContact, kw_only=True, tag="signup"):
    data: NoData = msgspec.field(default_factory=NoData)


class Purchase(_WithContact, kw_only=True, tag="purchase"):
    data: PurchaseData


class Refund(_WithContact, kw_only=True, tag="refund"):
    data: RefundData


class Churn(_WithContact, kw_only=True, tag="churn"):
    data: ChurnData = msgspec.field(default_factory=ChurnData)


class SegmentJoin(_WithContact, kw_only=True, tag="segment.join"):
    data: SegmentData


class SegmentLeave(_WithContact, kw_only=True, tag="segment.leave"):
    data: SegmentData


class ContactDelete(_WithContact, kw_only=True, tag="contact.delete"):
    data: NoData = msgspec.field(default_factory=NoData)


class SegmentUpsert(_Base, kw_only=True, tag="segment.upsert"):
    data: SegmentUpsertData


class SegmentDelete(_Base, kw_only=True, tag="segment.delete"):
    data: SegmentDeleteData


class AdPerformance(_Base, kw_only=True, tag="ad.performance"):
    data: AdPerformanceData


EVENTS: dict[str, type[msgspec.Struct]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (Signup, Purchase, Refund, Churn, SegmentJoin, SegmentLeave, SegmentUpsert, SegmentDelete,
                ContactDelete, AdPerformance)
}
"""Each event's struct by its `type`: looked up here, since msgspec's own tagged-union conversion of a dict
costs five times the conversion itself (88,000 instructions against 18,000 for a purchase)."""


def accepts(obj: dict[str, Any]) -> bool:
    """Whether the parsed JSON object is a valid event by the schema (the contact rule aside)."""
    kind = obj.get("type")
    struct = EVENTS.get(kind) if isinstance(kind, str) else None
    if struct is None:
        return False
    try:
        msgspec.convert(obj, struct)
    except msgspec.ValidationError:
        return False
    return True
