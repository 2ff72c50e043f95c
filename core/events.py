"""The event schema of SPEC section 4, and `validate_event`, the one gate every webhook body passes.

A body is parsed by orjson (strict: UTF-8 only, no BOM, no NaN, no lone surrogates, bounded depth), checked
for duplicate keys and NUL characters, then validated: first by msgspec's compiled structs (`core.fast_events`,
the hot path, yes or no), and when they say no by one pydantic TypeAdapter (a discriminated union on `type`)
built at import, which has the last word and names the bad fields. Unknown fields are kept and ignored, and
the caller gets back the parsed JSON object itself, never a re-dump with defaults. Every problem found is
reported, one entry per bad field, as `{"field": "data.order.amount_cents", "problem": "..."}`; list positions
appear as numbers in the path.

Imports only pydantic, msgspec, orjson and the rest of `core`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeAlias, Union

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)

from core import event_fields as fields
from core import fast_events
from core.errors import SluiceError
from core.routing import EVENT_TYPES

__all__ = ["EVENT_ADAPTER", "NO_CONTACT_TYPES", "Event", "InvalidEvent", "Problem", "validate_event"]

Problem: TypeAlias = dict[str, str]
"""One bad field: `{"field": "contact.email", "problem": "..."}`."""

BODY = "body"
"""The `field` of problems with the body as a whole (not JSON, not an object, duplicate keys...)."""

NO_CONTACT_TYPES = frozenset({"segment.upsert", "segment.delete", "ad.performance"})

class InvalidEvent(SluiceError):
    """A body that is not an event of SPEC section 4; `details` names each bad field."""

    def __init__(self, details: list[Problem]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['problem']}" for d in details))
        self.details = details


# ---- field types (their rules: core/event_fields.py) -------------------------------------------------------


def _matching(kind: str) -> AfterValidator:
    pattern, problem, max_length = fields.PATTERNS[kind]

    def check(value: str) -> str:
        if len(value) > max_length or not pattern.fullmatch(value):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _entity_id(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or an integer")
    if isinstance(value, str) and not 0 < len(value) <= fields.MAX_ENTITY_ID:
        raise ValueError(f"must be 1-{fields.MAX_ENTITY_ID} characters")
    return value


EventId = Annotated[str, _matching("event_id")]
EntityId = Annotated[str | int, PlainValidator(_entity_id, json_schema_input_type=str | int)]
Timestamp = Annotated[str, AfterValidator(fields.timestamp)]
Day = Annotated[str, AfterValidator(fields.day)]
DateLike = Annotated[str, AfterValidator(fields.date_or_timestamp)]
Slug = Annotated[str, _matching("slug")]
Email = Annotated[str, _matching("email")]
Phone = Annotated[str, _matching("phone")]
Currency = Annotated[str, _matching("currency")]
Name = Annotated[str, Field(min_length=1, max_length=fields.MAX_NAME)]
Cents = Annotated[int, Field(ge=0, le=fields.MAX_CENTS)]
Count = Annotated[int, Field(ge=0, le=fields.MAX_CENTS)]


class _Model(BaseModel):
    # strict: no "12" for 12, no 12.0 or true for an integer; extra: unknown fields are kept and ignored
    model_config = ConfigDict(strict=True, extra="allow")


# ---- parts -----------------------------------------------------------------------------------------------


class Account(_Model):
    id: EntityId
    name: str | None = None
    domain: str | None = None


class Contact(_Model):
    """`id` and at least one of `email` and `phone` (that rule is checked by `validate_event`)."""

    id: EntityId
    email: Email | None = None
    phone: Phone | None = None
    first_name: str | None = None
    last_name: str | None = None
    account: Account | None = None
    tags: list[Name] | None = None
    custom_fields: dict[str, Any] | None = None


class Item(_Model):
    product_id: EntityId
    name: str | None = None
    quantity: Count | None = None
    amount_cents: Cents


class Order(_Model):
    id: EntityId
    amount_cents: Cents
    paid_cents: Cents | None = None
    currency: Currency | None = None
    created_at: DateLike | None = None
    refunded: bool | None = None
    items: list[Item] | None = None


class Subscription(_Model):
    id: EntityId
    product_id: EntityId | None = None
    amount_cents: Cents | None = None
    billing_cycle: Literal["year", "month", "week", "day"] | None = None
    frequency: Annotated[int, Field(ge=1, le=fields.MAX_FREQUENCY)] | None = None
    quantity: Count | None = None
    start_date: DateLike | None = None
    last_bill_date: DateLike | None = None
    trial_end_date: DateLike | None = None
    end_date: DateLike | None = None


class NamedRef(_Model):
    id: EntityId
    name: str | None = None


class Segment(_Model):
    id: EntityId
    name: Name


class Criterion(_Model):
    field: Name
    op: Name
    value: Any = None


class SegmentDefinition(_Model):
    id: EntityId
    name: Name
    order: Count | None = None
    group: str | None = None
    criteria: list[Criterion] | None = None


class SegmentRef(_Model):
    id: EntityId


# ---- data of each type -----------------------------------------------------------------------------------


class NoData(_Model):
    pass


class PurchaseData(_Model):
    order: Order
    subscription: Subscription | None = None


class RefundData(_Model):
    order: Order


class ChurnData(_Model):
    reason: Slug | None = None
    comment: str | None = None
    mrr_cents: Cents | None = None
    subscription: Subscription | None = None


class SegmentData(_Model):
    segment: Segment


class SegmentUpsertData(_Model):
    segment: SegmentDefinition


class SegmentDeleteData(_Model):
    segment: SegmentRef


class AdPerformanceData(_Model):
    date: Day
    ad: NamedRef
    campaign: NamedRef | None = None
    adset: NamedRef | None = None
    spend_cents: Cents
    impressions: Count | None = None
    clicks: Count | None = None


# ---- events ----------------------------------------------------------------------------------------------


class _Base(_Model):
    id: EventId
    occurred_at: Timestamp


class _WithContact(_Base):
    contact: Contact


class Signup(_WithContact):
    type: Literal["signup"]
    data: NoData = NoData()


class Purchase(_WithContact):
    type: Literal["purchase"]
    data: PurchaseData


class Refund(_WithContact):
    type: Literal["refund"]
    data: RefundData


class Churn(_WithContact):
    type: Literal["churn"]
    data: ChurnData = ChurnData()


class SegmentJoin(_WithContact):
    type: Literal["segment.join"]
    data: SegmentData


class SegmentLeave(_WithContact):
    type: Literal["segment.leave"]
    data: SegmentData


class ContactDelete(_WithContact):
    type: Literal["contact.delete"]
    data: NoData = NoData()


class SegmentUpsert(_Base):
    type: Literal["segment.upsert"]
    data: SegmentUpsertData


class SegmentDelete(_Base):
    type: Literal["segment.delete"]
    data: SegmentDeleteData


class AdPerformance(_Base):
    type: Literal["ad.performance"]
    data: AdPerformanceData


Event = Annotated[
    Union[  # noqa: UP007 (a discriminated union needs the Union form under `from __future__ import annotations`)
        Signup, Purchase, Refund, Churn, SegmentJoin, SegmentLeave, SegmentUpsert, SegmentDelete, ContactDelete,
        AdPerformance,
    ],
    Field(discriminator="type"),
]

EventType = Literal[
    "signup", "purchase", "refund", "churn", "segment.join", "segment.leave", "segment.upsert", "segment.delete",
    "contact.delete", "ad.performance",
]


class _Envelope(_Base):
    """The fields every event has: validated when `type` is missing or unknown, to name the other bad fields too."""

    type: EventType
    contact: Contact | None = None


EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)
"""Built once; its `json_schema()` describes every event type (for /openapi.json)."""

_ENVELOPE_ADAPTER: TypeAdapter[_Envelope] = TypeAdapter(_Envelope)


# ---- validation ------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return obj


_DUPLICATE_REFUSING = json.JSONDecoder(object_pairs_hook=_no_duplicates)
"""Built once: `json.loads` with a hook builds a new decoder on every call."""

_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _parse(body: bytes) -> dict[str, Any]:
    """The JSON object of the body, or InvalidEvent naming what is wrong with the body as a whole."""

    def fail(problem: str) -> InvalidEvent:
        return InvalidEvent([{"field": BODY, "problem": problem}])

    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise fail(f"not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise fail("must be a JSON object")
    if b"\\u" in body:
        if b"\\u0000" in body and _ESCAPED_NUL.search(body):
            raise fail("must not contain NUL characters")
    elif _same_colons(body, obj):
        return obj
    try:
        # orjson keeps the last of duplicate keys silently; a second, hooked parse refuses them
        _DUPLICATE_REFUSING.decode(body.decode())
    except RecursionError:
        raise fail("nested too deeply") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    return obj


def _same_colons(body: bytes, obj: dict[str, Any]) -> bool:
    """No duplicate keys in a body without `\\u` escapes, at the cost of one re-serialisation (~1 us against the
    ~10 us of the hooked parse). Without `\\u`, a colon in JSON text is either a key's separator or a literal
    character of a string, and orjson's output has exactly the same: one separator per key it kept, and every
    string it kept as it was. So the body has more colons than orjson's dump of what it parsed exactly when some
    keys were dropped (a duplicate's pair, and the colons of its value with it), and the same number otherwise.
    False also when orjson cannot write the object back (nested deeper than it writes): the hooked parse
    decides."""
    try:
        again = orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return False
    return body.count(b":") == again.count(b":")


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or BODY


def _problems(exc: ValidationError, skip_tag: str | None) -> list[Problem]:
    found: list[Problem] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = err["loc"]
        if skip_tag is not None and loc and loc[0] == skip_tag:
            loc = loc[1:]  # the discriminated union puts the tag first; it is not a field
        problem = "required" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        item = {"field": _path(loc), "problem": problem}
        if item not in found:
            found.append(item)
    return found


def _contact_problems(event: dict[str, Any]) -> list[Problem]:
    contact, kind = event.get("contact"), event.get("type")
    if (isinstance(kind, str) and kind in NO_CONTACT_TYPES) or not isinstance(contact, dict):
        return []
    if contact.get("email") is None and contact.get("phone") is None:
        return [{"field": "contact", "problem": "needs at least one of email and phone"}]
    return []


def validate_event(body: bytes) -> dict[str, Any]:
    """The event of a raw webhook body as a plain dict (the JSON object as sent), or InvalidEvent.

    A valid event passes msgspec's compiled check (`core.fast_events`) and returns at once; anything else is
    judged by the pydantic models, which name every bad field (and have the last word)."""
    event = _parse(body)
    if fast_events.accepts(event) and not _contact_problems(event):
        return event
    problems: list[Problem] = []
    kind = event.get("type")
    try:
        EVENT_ADAPTER.validate_python(event)
    except ValidationError as exc:
        if kind in EVENT_TYPES:
            problems = _problems(exc, skip_tag=kind)
        else:
            problems = _envelope_problems(event)
    problems += [p for p in _contact_problems(event) if p not in problems]
    if problems:
        raise InvalidEvent(problems)
    return event


def _envelope_problems(event: dict[str, Any]) -> list[Problem]:
    try:
        _ENVELOPE_ADAPTER.validate_python(event)
    except ValidationError as exc:
        return _problems(exc, skip_tag=None)
    return []  # pragma: no cover  (a bad `type` always fails the envelope too)

