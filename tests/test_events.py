"""The event schema of SPEC section 4: what validates, and the named fields of what does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import fast_events
from core.events import _DUPLICATE_REFUSING, EVENT_ADAPTER, InvalidEvent, _contact_problems, _parse
from core.events import validate_event as _validate_event
from core.routing import EVENT_TYPES

CONTACT = {"id": "cus_42", "email": "ada@example.com", "phone": "+4400114527199", "first_name": "Ada",
           "last_name": "Lovelace", "account": {"id": "acc_7", "name": "Acme", "domain": "acme.io"},
           "tags": ["newsletter"], "custom_fields": {"plan": "pro"}}
ORDER = {"id": "ord_1", "amount_cents": 4500, "paid_cents": 4500, "currency": "EUR",
         "created_at": "2026-11-24T10:00:00Z", "refunded": False,
         "items": [{"product_id": "p1", "name": "Round Tuit", "quantity": 1, "amount_cents": 4500}]}
SUBSCRIPTION = {"id": "sub_1", "product_id": "p1", "amount_cents": 990, "billing_cycle": "month", "frequency": 1,
                "quantity": 1, "start_date": "2026-01-01", "last_bill_date": "2026-11-01T00:00:00Z",
                "trial_end_date": None, "end_date": None}
AD = {"date": "2026-11-23", "ad": {"id": "ad_1", "name": "Ad"}, "campaign": {"id": "c_1", "name": "C"},
      "adset": {"id": "s_1", "name": "S"}, "spend_cents": 1200, "impressions": 1000, "clicks": 12}

DATA: dict[str, dict[str, Any]] = {
    "signup": {},
    "purchase": {"order": ORDER, "subscription": SUBSCRIPTION},
    "refund": {"order": {**ORDER, "refunded": True, "paid_cents": 0}},
    "churn": {"reason": "too_expensive", "comment": "bye", "mrr_cents": 990, "subscription": SUBSCRIPTION},
    "segment.join": {"segment": {"id": "vip", "name": "VIP"}},
    "segment.leave": {"segment": {"id": "100500", "name": "VIP"}},
    "segment.upsert": {"segment": {"id": "seg_1", "name": "Big spenders", "order": 3, "group": "sluice",
                                   "criteria": [{"field": "act", "op": "begins", "value": "12"}]}},
    "segment.delete": {"segment": {"id": "seg_1"}},
    "contact.delete": {},
    "ad.performance": AD,
}


def schemas_agree(raw: bytes) -> None:
    """The msgspec structs (core.fast_events, the hot path) and the pydantic models say the same of this body:
    every case of this module, the random ones included, goes through both."""
    try:
        obj = _parse(raw)
    except InvalidEvent:
        return
    contact_ok = not _contact_problems(obj)
    try:
        EVENT_ADAPTER.validate_python(obj)
        pydantic_says = contact_ok
    except ValueError:
        pydantic_says = False
    assert (fast_events.accepts(obj) and contact_ok) == pydantic_says, (pydantic_says, obj)


def validate_event(raw: bytes) -> dict[str, Any]:
    schemas_agree(raw)
    return _validate_event(raw)


def event(kind: str = "purchase", **changes: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"id": "evt_01J9Z6", "type": kind, "occurred_at": "2026-11-24T10:00:00Z",
                          "data": copy.deepcopy(DATA[kind])}
    if kind not in {"segment.upsert", "segment.delete", "ad.performance"}:
        ev["contact"] = copy.deepcopy(CONTACT)
    ev.update(changes)
    return ev


def problems(body: dict[str, Any] | bytes) -> dict[str, str]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(InvalidEvent) as info:
        validate_event(raw)
    return {d["field"]: d["problem"] for d in info.value.details}


def with_path(ev: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `ev` with the dotted `path` set to `value` (or removed when value is DELETE)."""
    ev = copy.deepcopy(ev)
    *parents, last = path.split(".")
    node: Any = ev
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return ev


DELETE = object()


def test_every_routed_type_has_a_schema() -> None:
    """The schema and the routing table know the same event types."""
    assert set(DATA) == set(EVENT_TYPES)


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_each_type_validates_and_comes_back_as_sent(kind: str) -> None:
    """A full event of every type is accepted and returned as the JSON object that was sent."""
    ev = event(kind)
    assert validate_event(orjson.dumps(ev)) == ev


@pytest.mark.parametrize(
    "ev",
    [
        event("signup", data={}, extra={"kept": [1, 2]}),
        {k: v for k, v in event("signup").items() if k != "data"},
        event("contact.delete", contact={"id": "cus_1", "phone": "+44 20 7946 0018"}),
        event("signup", contact={"id": 42, "email": "a@b.co", "phone": None, "unknown": True}),
        event("signup", occurred_at="2026-11-24T10:00:00.123456+05:30"),
        event("signup", occurred_at="2026-11-24t10:00:00.1-08:00"),
        event("purchase", data={"order": {"id": 1234, "amount_cents": 0}}),
        event("churn", data={}),
        event("churn", data={"reason": "price", "subscription": {"id": "s", "billing_cycle": "year"}}),
        event("ad.performance", contact={"ignored": True}),
        event("ad.performance", data={"date": "2024-02-29", "ad": {"id": 7}, "spend_cents": 0}),
        event("segment.upsert", data={"segment": {"id": 401, "name": "x"}}),
        event("purchase", id="a" * 128),
        event("purchase", id="A.b_c:d-9"),
    ],
    ids=lambda ev: str(ev.get("type")),
)
def test_valid_variants(ev: dict[str, Any]) -> None:
    """Optional parts may be missing or null, ids may be integers, unknown fields are kept."""
    assert validate_event(orjson.dumps(ev)) == ev


INVALID: list[tuple[str, dict[str, Any], set[str]]] = [
    ("id missing", with_path(event(), "id", DELETE), {"id"}),
    ("id empty", event(id=""), {"id"}),
    ("id too long", event(id="a" * 129), {"id"}),
    ("id with a space", event(id="evt 1"), {"id"}),
    ("id with a slash", event(id="evt/1"), {"id"}),
    ("id not a string", event(id=12), {"id"}),
    ("type missing", with_path(event(), "type", DELETE), {"type"}),
    ("type unknown", event(type="order.created"), {"type"}),
    ("type not a string", event(type=["purchase"]), {"type"}),
    ("unknown type and bad id both named", event(type="nope", id="a b"), {"type", "id"}),
    ("occurred_at missing", with_path(event(), "occurred_at", DELETE), {"occurred_at"}),
    ("occurred_at without offset", event(occurred_at="2026-11-24T10:00:00"), {"occurred_at"}),
    ("occurred_at a date", event(occurred_at="2026-11-24"), {"occurred_at"}),
    ("occurred_at unix seconds", event(occurred_at=1795000000), {"occurred_at"}),
    ("occurred_at not a real time", event(occurred_at="2026-02-30T10:00:00Z"), {"occurred_at"}),
    ("occurred_at bad offset", event(occurred_at="2026-11-24T10:00:00+0100"), {"occurred_at"}),
    ("contact missing", with_path(event(), "contact", DELETE), {"contact"}),
    ("contact null", event(contact=None), {"contact"}),
    ("contact not an object", event(contact="cus_42"), {"contact"}),
    ("contact.id missing", with_path(event(), "contact.id", DELETE), {"contact.id"}),
    ("contact.id empty", with_path(event(), "contact.id", ""), {"contact.id"}),
    ("contact.id a bool", with_path(event(), "contact.id", True), {"contact.id"}),
    ("no email and no phone", event(contact={"id": "c"}), {"contact"}),
    ("email and phone null", event(contact={"id": "c", "email": None, "phone": None}), {"contact"}),
    ("contact.id and email/phone both named", event(contact={"name": "x"}), {"contact", "contact.id"}),
    ("email not an email", with_path(event(), "contact.email", "ada.example.com"), {"contact.email"}),
    ("email not a string", with_path(event(), "contact.email", 5), {"contact.email"}),
    ("phone letters", with_path(event(), "contact.phone", "call me"), {"contact.phone"}),
    ("tags not a list", with_path(event(), "contact.tags", "vip"), {"contact.tags"}),
    ("tag not a string", with_path(event(), "contact.tags", ["ok", 3]), {"contact.tags.1"}),
    ("account without id", with_path(event(), "contact.account", {"name": "Acme"}), {"contact.account.id"}),
    ("custom_fields a list", with_path(event(), "contact.custom_fields", [1]), {"contact.custom_fields"}),
    ("data missing", with_path(event(), "data", DELETE), {"data"}),
    ("data not an object", event(data=[]), {"data"}),
    ("order missing", event(data={}), {"data.order"}),
    ("order id missing", with_path(event(), "data.order.id", DELETE), {"data.order.id"}),
    ("amount a float", with_path(event(), "data.order.amount_cents", 45.0), {"data.order.amount_cents"}),
    ("amount a fraction", with_path(event(), "data.order.amount_cents", 45.5), {"data.order.amount_cents"}),
    ("amount a bool", with_path(event(), "data.order.amount_cents", True), {"data.order.amount_cents"}),
    ("amount a string", with_path(event(), "data.order.amount_cents", "4500"), {"data.order.amount_cents"}),
    ("amount negative", with_path(event(), "data.order.amount_cents", -1), {"data.order.amount_cents"}),
    ("amount huge", with_path(event(), "data.order.amount_cents", 2**63), {"data.order.amount_cents"}),
    ("amount missing", with_path(event(), "data.order.amount_cents", DELETE), {"data.order.amount_cents"}),
    ("paid a float", with_path(event(), "data.order.paid_cents", 1e3), {"data.order.paid_cents"}),
    ("refunded not a bool", with_path(event(), "data.order.refunded", 0), {"data.order.refunded"}),
    ("currency not a code", with_path(event(), "data.order.currency", "euro"), {"data.order.currency"}),
    ("created_at no offset", with_path(event(), "data.order.created_at", "2026-11-24 10:00"),
     {"data.order.created_at"}),
    ("item amount a float", with_path(event(), "data.order.items.0.amount_cents", 1.5),
     {"data.order.items.0.amount_cents"}),
    ("item without product", with_path(event(), "data.order.items.0.product_id", DELETE),
     {"data.order.items.0.product_id"}),
    ("items not a list", with_path(event(), "data.order.items", {}), {"data.order.items"}),
    ("every bad field named",
     with_path(with_path(event(id="x y"), "contact.email", "nope"), "data.order.amount_cents", 1.5),
     {"id", "contact.email", "data.order.amount_cents"}),
    ("billing_cycle unknown", with_path(event(), "data.subscription.billing_cycle", "fortnight"),
     {"data.subscription.billing_cycle"}),
    ("frequency zero", with_path(event(), "data.subscription.frequency", 0), {"data.subscription.frequency"}),
    ("start_date junk", with_path(event(), "data.subscription.start_date", "soon"), {"data.subscription.start_date"}),
    ("refund without order", event("refund", data={}), {"data.order"}),
    ("churn reason not a slug", with_path(event("churn"), "data.reason", "Too Expensive"), {"data.reason"}),
    ("churn reason camelCase", with_path(event("churn"), "data.reason", "tooExpensive"), {"data.reason"}),
    ("churn reason trailing _", with_path(event("churn"), "data.reason", "too_"), {"data.reason"}),
    ("churn mrr a float", with_path(event("churn"), "data.mrr_cents", 9.9), {"data.mrr_cents"}),
    ("churn subscription cycle", with_path(event("churn"), "data.subscription.billing_cycle", "Month"),
     {"data.subscription.billing_cycle"}),
    ("segment.join without segment", event("segment.join", data={}), {"data.segment"}),
    ("segment.join without name", event("segment.join", data={"segment": {"id": "vip"}}), {"data.segment.name"}),
    ("segment.leave without id", event("segment.leave", data={"segment": {"name": "VIP"}}), {"data.segment.id"}),
    ("segment.upsert criteria", with_path(event("segment.upsert"), "data.segment.criteria.0", {"op": "eq"}),
     {"data.segment.criteria.0.field"}),
    ("segment.upsert order a string", with_path(event("segment.upsert"), "data.segment.order", "3"),
     {"data.segment.order"}),
    ("segment.delete without id", event("segment.delete", data={"segment": {}}), {"data.segment.id"}),
    ("ad date with time", with_path(event("ad.performance"), "data.date", "2026-11-23T00:00:00Z"), {"data.date"}),
    ("ad date not real", with_path(event("ad.performance"), "data.date", "2026-02-30"), {"data.date"}),
    ("ad date US order", with_path(event("ad.performance"), "data.date", "11/23/2026"), {"data.date"}),
    ("ad without ad", with_path(event("ad.performance"), "data.ad", DELETE), {"data.ad"}),
    ("ad spend a float", with_path(event("ad.performance"), "data.spend_cents", 12.0), {"data.spend_cents"}),
    ("ad clicks a bool", with_path(event("ad.performance"), "data.clicks", False), {"data.clicks"}),
    ("ad campaign id missing", with_path(event("ad.performance"), "data.campaign", {"name": "C"}),
     {"data.campaign.id"}),
]


@pytest.mark.parametrize(("case", "ev", "fields"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_events_name_each_bad_field(case: str, ev: dict[str, Any], fields: set[str]) -> None:
    """Each broken rule of section 4 is reported under the field that breaks it, and only there."""
    found = problems(ev)
    assert set(found) == fields, found
    assert all(found.values())


BAD_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not JSON", b"hello"),
    ("truncated", b'{"id": "evt_1", '),
    ("array", b"[]"),
    ("string", b'"purchase"'),
    ("number", b"12"),
    ("null", b"null"),
    ("invalid UTF-8", b'{"id": "\xff\xfe"}'),
    ("overlong UTF-8", b'{"id": "\xc0\xaf"}'),
    ("UTF-16", '{"id": "x"}'.encode("utf-16")),
    ("BOM", b'\xef\xbb\xbf{"id": "x"}'),
    ("raw NUL", b'{"id": "x"}\x00'),
    ("NUL in a string", b'{"id": "evt_1", "type": "signup", "x": "a\\u0000b"}'),
    ("NUL in a key", b'{"a\\u0000": 1}'),
    ("lone surrogate", b'{"id": "\\ud800"}'),
    ("NaN", b'{"amount": NaN}'),
    ("Infinity", b'{"amount": Infinity}'),
    ("huge number", b'{"amount": 1e999}'),
    ("huge integer", b'{"amount": ' + b"9" * 5000 + b"}"),
    ("duplicate keys", b'{"id": "evt_1", "id": "evt_2"}'),
    ("nested duplicate keys", b'{"contact": {"email": "a@b.co", "email": "c@d.co"}}'),
    ("deep nesting", b'{"a":' * 5000 + b"1" + b"}" * 5000),
    ("deep arrays", b'{"a":' + b"[" * 1020 + b"]" * 1020 + b"}"),
    ("trailing garbage", b'{"id": "x"} {}'),
    ("single quotes", b"{'id': 'x'}"),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies_are_invalid_events(case: str, body: bytes) -> None:
    """Whatever the bytes, a body that is not one JSON object is an InvalidEvent about the body."""
    assert set(problems(body)) == {"body"}


def test_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    """`\\\\u0000` is a backslash followed by the text u0000, not a NUL character."""
    ev = event("signup", contact={**CONTACT, "first_name": "\\u0000"})
    assert validate_event(orjson.dumps(ev)) == ev


def test_unknown_fields_are_kept_as_sent() -> None:
    """Extra fields anywhere come back untouched; no defaults are added."""
    ev = event("churn", data={"reason": "price", "vendor_specific": {"deep": [1, {"x": None}]}}, note="hi")
    ev["contact"]["nickname"] = "A"
    assert validate_event(orjson.dumps(ev)) == ev
    assert "subscription" not in validate_event(orjson.dumps(ev))["data"]


def test_problem_shape() -> None:
    """Details are `{"field", "problem"}` objects with readable problems."""
    with pytest.raises(InvalidEvent) as info:
        validate_event(orjson.dumps(event(id="bad id", contact={"id": "c", "email": None})))
    assert info.value.details == [
        {"field": "id", "problem": "must be 1-128 characters of A-Z a-z 0-9 . _ : -"},
        {"field": "contact", "problem": "needs at least one of email and phone"},
    ]
    assert "id: must be" in str(info.value)


def test_json_schema_of_every_event() -> None:
    """The adapter describes every type, for /openapi.json."""
    schema = EVENT_ADAPTER.json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)


def _json() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                           max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=512))
def test_random_bytes_only_ever_raise_invalid_event(body: bytes) -> None:
    """No byte string makes validation fail with anything but InvalidEvent."""
    try:
        validate_event(body)
    except InvalidEvent as exc:
        assert exc.details


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(EVENT_TYPES), path=st.sampled_from(
    ["id", "type", "occurred_at", "contact", "contact.id", "contact.email", "contact.phone", "contact.account",
     "contact.tags", "data", "data.order", "data.order.amount_cents", "data.order.items", "data.segment",
     "data.date", "data.reason", "data.subscription", "data.spend_cents", "data.ad"]), value=_json())
def test_random_values_in_real_events_only_ever_raise_invalid_event(kind: str, path: str, value: Any) -> None:
    """Any JSON value put anywhere in a real event either validates (and comes back as sent) or is named."""
    ev = event(kind)
    parent = path.rpartition(".")[0]
    try:
        ev = with_path(ev, path, value)
    except (KeyError, TypeError, IndexError):
        ev = with_path(ev, parent, {}) if parent else ev
    body = json.dumps(ev).encode()  # json, not orjson: it writes integers beyond 64 bits too
    try:
        assert validate_event(body) == orjson.loads(body)
    except InvalidEvent as exc:
        assert exc.details and all(d["field"] and d["problem"] for d in exc.details)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(st.text(max_size=10), _json(), max_size=8))
def test_random_json_objects_only_ever_raise_invalid_event(doc: dict[str, Any]) -> None:
    """Random JSON objects, with or without a known type, never break the validator."""
    try:
        validate_event(json.dumps(doc).encode())
    except InvalidEvent as exc:
        assert exc.details


_COLONS = st.text(alphabet=st.sampled_from(':"\\ab\u00e9/\n'), max_size=6)
"""Strings heavy in what the duplicate-key check counts and what JSON escapes."""


def _colon_json() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.integers(-5, 5) | _COLONS
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_COLONS, inner,
                                                                                           max_size=3), max_leaves=12)


def _refuses_duplicates(body: bytes) -> bool:
    try:
        _parse(body)
    except InvalidEvent as exc:
        return "duplicate key" in exc.details[0]["problem"]
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.dictionaries(_COLONS, _colon_json(), min_size=1, max_size=5), ascii_only=st.booleans(),
       spaced=st.booleans(), duplicate=st.booleans(), data=st.data())
def test_duplicate_keys_are_found_exactly_where_the_hooked_parse_finds_them(
        doc: dict[str, Any], ascii_only: bool, spaced: bool, duplicate: bool, data: st.DataObject) -> None:
    """The colon count of `_parse`'s fast path (bodies without `\\u` escapes) says "duplicate" exactly when the
    json module's hooked parse does, whatever the strings hold (colons, quotes, backslashes) and however the
    body is spaced or escaped."""
    separators = (", ", " : ") if spaced else (",", ":")
    text = json.dumps(doc, ensure_ascii=ascii_only, separators=separators)
    if duplicate:
        key = data.draw(st.sampled_from(sorted(doc)))
        again = json.dumps({key: data.draw(_colon_json())}, ensure_ascii=ascii_only, separators=separators)
        text = again[:-1] + separators[0] + text[1:]
    try:
        _DUPLICATE_REFUSING.decode(text)
        hooked = False
    except ValueError:
        hooked = True
    assert _refuses_duplicates(text.encode()) == hooked == duplicate


@pytest.mark.parametrize(("body", "duplicate"), [
    (b'{"a":"x:y","a":1}', True),
    (b'{"a":1,"a":"x:y"}', True),
    (b'{"a":1,"b":"\\":"}', False),
    (b'{"a" :1,"a" :2,"x":"\\":"}', True),
    (b'{"a":{"b":1,"b":2}}', True),
    (b'{"a":[{"b":1},{"b":2}]}', False),
    (b'{"a":1,"\\u0061":2}', True),
    (b'{"a":"\\u003a","a":"\\u003a"}', True),
    (b'{"a":"\\u003a","b":"::"}', False),
])
def test_duplicate_keys_by_hand(body: bytes, duplicate: bool) -> None:
    assert _refuses_duplicates(body) == duplicate


def test_real_time_is_parse_rfc3339_on_every_boundary() -> None:
    """`event_fields.real_time` (both validators' check) says yes exactly where the clock's parser reads a time,
    for every string of the RFC 3339 pattern built from the components' boundary values."""
    import itertools

    from core import event_fields
    from core.clock import parse_rfc3339

    def parses(value: str) -> bool:
        try:
            parse_rfc3339(value)
        except ValueError:
            return False
        return True

    parts = itertools.product(["0001", "2024", "2026", "9999"], ["00", "01", "02", "12", "13"],
                              ["00", "28", "29", "30", "31", "32"], ["T", "t", " "], ["00", "23", "24"],
                              ["59", "60"], ["59", "60"], ["", ".1", ".123456789"],
                              ["Z", "z", "+00:00", "-23:59", "+24:00", "+05:60"])
    for y, mo, d, sep, h, mi, s, frac, tz in parts:
        value = f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{tz}"
        assert event_fields.RFC3339.fullmatch(value)
        assert event_fields.real_time(value) == parses(value), value
