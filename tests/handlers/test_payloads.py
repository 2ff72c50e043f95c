"""Pure payload builders, table-driven against the examples of the vendors' documentation (carried here as
our own data: the examples of vendors.md)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import PermanentError
from handlers import infinity, personaclick, salesmachine, segmetrics
from handlers.base import form_encode
from handlers.fields import cents_to_units, full_name, unix_seconds
from tests.handlers import samples


def _event(kind: str, contact: dict[str, Any] | None, occurred_at: str = "2026-11-24T10:00:00Z", **data: Any) -> dict:
    ev: dict[str, Any] = {"id": "evt_x", "type": kind, "occurred_at": occurred_at, "data": data}
    if contact is not None:
        ev["contact"] = contact
    return ev


# -- shared formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2018-10-02T16:15:00Z", "2018-10-02 16:15:00"),
        ("2018-10-02T18:15:00+02:00", "2018-10-02 16:15:00"),
        ("2018-10-02T10:45:00-05:30", "2018-10-02 16:15:00"),
        ("2018-10-02T16:15:00.987654Z", "2018-10-02 16:15:00"),
        ("2018-10-02t16:15:00z", "2018-10-02 16:15:00"),
        ("2018-10-02", "2018-10-02 00:00:00"),
    ],
)
def test_segmetrics_dates_are_utc_without_t(value: str, expected: str) -> None:
    assert segmetrics.sm_date(value) == expected


def test_an_unreadable_time_is_permanent() -> None:
    with pytest.raises(PermanentError, match="not an RFC 3339 time"):
        segmetrics.sm_date("yesterday")


@pytest.mark.parametrize(
    ("cents", "units"), [(9900, 99), (4999, 49.99), (5, 0.05), (0, 0), (99900, 999), (123456, 1234.56)]
)
def test_cents_become_currency_units(cents: int, units: float) -> None:
    converted = cents_to_units(cents)
    assert converted == units
    assert isinstance(converted, int) == (cents % 100 == 0)


@pytest.mark.parametrize("bad", [49.99, "4999", True, None])
def test_cents_must_be_integers(bad: Any) -> None:
    with pytest.raises(PermanentError):
        cents_to_units(bad)


def test_unix_seconds() -> None:
    assert unix_seconds("2026-11-24T10:00:00Z") == 1795514400
    assert unix_seconds("2026-11-24T11:00:00+01:00") == 1795514400


@pytest.mark.parametrize(
    ("person", "name"),
    [
        ({"first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ({"first_name": "Ada"}, "Ada"),
        ({"last_name": "Lovelace"}, "Lovelace"),
        ({"first_name": " Ada ", "last_name": ""}, "Ada"),
        ({}, None),
    ],
)
def test_full_name(person: dict[str, str], name: str | None) -> None:
    assert full_name(person) == name


# -- SegMetrics -----------------------------------------------------------------------------------------

JOEY = {"id": "249", "email": "joey@bloggs.com", "first_name": "Joey", "last_name": "Bloggs",
        "custom_fields": {"shirt_size": "Medium"}}


def test_segmetrics_contact_matches_the_documented_example() -> None:
    ev = _event("signup", JOEY, occurred_at="2018-10-02T16:15:00Z")
    assert segmetrics.contact_body(ev) == {
        "contact_id": "249", "email": "joey@bloggs.com", "first_name": "Joey", "last_name": "Bloggs",
        "status": "active", "date_created": "2018-10-02 16:15:00", "custom_fields": {"shirt_size": "Medium"},
    }


def test_segmetrics_contact_outside_signup_keeps_its_creation_date() -> None:
    body = segmetrics.contact_body(_event("purchase", JOEY, occurred_at="2018-10-02T16:15:00Z"))
    assert "date_created" not in body and body["last_updated"] == "2018-10-02 16:15:00"
    assert segmetrics.contact_body(_event("churn", JOEY))["status"] == "inactive"


def test_segmetrics_contact_never_sends_tags() -> None:
    assert "tags" not in segmetrics.contact_body(samples.signup())


ROUND_TUIT = {"id": "234115", "amount_cents": 4500, "paid_cents": 4500, "currency": "USD",
              "created_at": "2018-10-03T11:14:32Z", "refunded": False,
              "items": [{"product_id": "1556", "name": "Round Tuit", "quantity": 1, "amount_cents": 4000}]}


def test_segmetrics_invoice_matches_the_documented_example() -> None:
    ev = _event("purchase", {"id": "cus_1", "email": "a@b.com"}, order=ROUND_TUIT)
    assert segmetrics.invoice_body(ev) == {
        "email": "a@b.com", "id": "234115", "amount": 4500, "paid": 4500, "is_refunded": 0,
        "date_created": "2018-10-03 11:14:32",
        "items": [{"name": "Round Tuit", "product_id": "1556", "amount": 4000}],
    }


@pytest.mark.parametrize(
    ("contact", "key"),
    [
        ({"id": "cus_1", "email": "a@b.com", "phone": "+1"}, {"email": "a@b.com"}),
        ({"id": "cus_1", "phone": "+1"}, {"contact_id": "cus_1"}),
        ({"id": 77, "phone": "+1", "email": ""}, {"contact_id": "77"}),
    ],
)
def test_segmetrics_names_the_contact_by_email_when_known(contact: dict[str, Any], key: dict[str, str]) -> None:
    ev = _event("purchase", contact, order=ROUND_TUIT, subscription=samples.SUBSCRIPTION)
    for body in (segmetrics.invoice_body(ev), segmetrics.subscription_body(ev)):
        assert {k: body[k] for k in ("email", "contact_id") if k in body} == key


@pytest.mark.parametrize(
    ("kind", "refunded", "expected"),
    [("purchase", False, 0), ("purchase", True, 1), ("refund", False, 1), ("refund", None, 1)],
)
def test_segmetrics_invoice_refund_flag(kind: str, refunded: bool | None, expected: int) -> None:
    order = {**ROUND_TUIT, "refunded": refunded}
    body = segmetrics.invoice_body(_event(kind, {"id": "c", "email": "a@b.com"}, order=order))
    assert body["is_refunded"] == expected


def test_segmetrics_invoice_amounts_stay_integer_cents() -> None:
    body = segmetrics.invoice_body(samples.purchase())
    assert body["amount"] == 4999 and body["paid"] == 4999
    assert [i["amount"] for i in body["items"]] == [3999, 1000]
    assert body["date_created"] == "2026-11-24 08:58:30"  # the order's created_at, in UTC


def test_segmetrics_subscription_from_a_purchase() -> None:
    assert segmetrics.subscription_body(samples.purchase()) == {
        "email": "ada@example.com", "id": "sub_9", "amount": 1900, "product_id": "plan_pro",
        "start_date": "2026-01-01 00:00:00", "last_bill_date": "2026-11-01 00:00:00", "billing_cycle": "month",
        "frequency": 1, "quantity": 1, "trial_end_date": "2026-01-15 00:00:00",
    }


def test_segmetrics_churn_cancels_the_subscription_at_occurred_at() -> None:
    assert segmetrics.subscription_body(samples.churn())["canceled_date"] == "2026-11-24 10:00:00"


@pytest.mark.parametrize(
    ("ev", "tags"),
    [
        (samples.signup(), ["newsletter"]),
        (samples.churn(), ["churned"]),
        (samples.segment_join(), ["VIP customers"]),
        (samples.segment_leave(), ["VIP customers"]),
        (samples.event("segment.join", segment={"id": "vip"}), ["vip"]),
    ],
)
def test_segmetrics_tags_of_each_event(ev: dict[str, Any], tags: list[str]) -> None:
    assert segmetrics.tags_body(ev) == {"email": "ada@example.com", "tags": tags}


def test_segmetrics_tags_documented_shape_by_contact_id() -> None:
    ev = _event("signup", {"id": "249", "phone": "+1", "tags": [3, 45, 8]})
    assert segmetrics.tags_body(ev) == {"contact_id": "249", "tags": ["3", "45", "8"]}


def test_segmetrics_no_tags_is_nothing_to_send() -> None:
    ev = samples.signup()
    ev["contact"]["tags"] = []
    assert segmetrics.tags_body(ev) is None


def test_segmetrics_ad_performance() -> None:
    assert segmetrics.ad_performance_body(samples.ad_performance()) == {
        "ad": {"id": "ad_1", "name": "Winter sale"},
        "adcampaign": {"id": "cmp_1", "name": "Winter"},
        "adset": {"id": "set_1", "name": "Lookalikes"},
        "spend": 12345, "date": "2026-11-23", "clicks": 321, "impressions": 10000,
    }


@pytest.mark.parametrize(
    ("builder", "ev", "missing"),
    [
        (segmetrics.invoice_body, samples.signup(), "data.order"),
        (segmetrics.subscription_body, samples.purchase(subscription=False), "data.subscription"),
        (segmetrics.ad_performance_body, samples.signup(), "data.ad"),
        (segmetrics.contact_body, samples.ad_performance(), "contact"),
    ],
)
def test_an_event_without_what_the_operation_needs_is_permanent(builder: Any, ev: dict, missing: str) -> None:
    with pytest.raises(PermanentError, match=missing.replace(".", r"\.")):
        builder(ev)


# -- Salesmachine ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "uid", "display"),
    [
        ("signup", "signup", "Signup"),
        ("purchase", "purchase", "Purchase"),
        ("refund", "refund", "Refund"),
        ("churn", "churn", "Churn"),
        ("segment.join", "segment_join", "Segment join"),
        ("segment.leave", "segment_leave", "Segment leave"),
        ("contact.delete", "contact_delete", "Contact delete"),
    ],
)
def test_salesmachine_event_uid_is_snake_case(kind: str, uid: str, display: str) -> None:
    assert salesmachine.event_uid(kind) == uid
    assert salesmachine.display_name(uid) == display


def test_salesmachine_track_event_matches_the_documented_shape() -> None:
    contact = {"id": "123456", "email": "x@y.z", "account": {"id": "78910"}}
    assert salesmachine.track_event_body(_event("signup", contact)) == {
        "contact_uid": "123456", "event_uid": "signup", "params": {"account_uid": "78910", "display_name": "Signup"},
    }


def test_salesmachine_track_event_without_account() -> None:
    body = salesmachine.track_event_body(_event("signup", {"id": "123456", "email": "x@y.z"}))
    assert body["params"] == {"display_name": "Signup"}


def test_salesmachine_track_purchase_carries_the_order_in_units() -> None:
    params = salesmachine.track_event_body(samples.purchase())["params"]
    assert params == {"display_name": "Purchase", "account_uid": "acc_7", "order_id": "ord_1001",
                      "amount": 49.99, "currency": "EUR"}


def test_salesmachine_track_segment_join() -> None:
    body = salesmachine.track_event_body(samples.segment_join())
    assert body["event_uid"] == "segment_join"
    assert body["params"]["segment_id"] == "vip" and body["params"]["segment_name"] == "VIP customers"


def test_salesmachine_contact_matches_the_documented_shape() -> None:
    contact = {"id": "123456", "email": "joe@x.io", "first_name": "Joe", "last_name": "Bloggs",
               "account": {"id": "78910"}}
    assert salesmachine.contact_body(_event("signup", contact)) == {
        "contact_uid": "123456", "params": {"email": "joe@x.io", "name": "Joe Bloggs", "account_uid": "78910"},
    }


def test_salesmachine_contact_custom_fields_never_override_reserved_ones() -> None:
    ev = samples.signup()
    ev["contact"]["custom_fields"] = {"plan": "pro", "email": "spoof@x.io"}
    params = salesmachine.contact_body(ev)["params"]
    assert params["plan"] == "pro" and params["email"] == "ada@example.com"


def test_salesmachine_churn_contact() -> None:
    params = salesmachine.contact_body(samples.churn())["params"]
    assert params["churn_date"] == 1795514400
    assert params["churn_mrr"] == 19 and isinstance(params["churn_mrr"], int)
    assert params["churn_reason"] == "too_expensive"
    assert params["churn_comment"] == "Price went up"
    assert params["name"] == "Ada Lovelace"


def test_salesmachine_churn_mrr_with_cents() -> None:
    ev = samples.churn()
    ev["data"]["mrr_cents"] = 4999
    assert salesmachine.contact_body(ev)["params"]["churn_mrr"] == 49.99


def test_salesmachine_account_matches_the_documented_shape() -> None:
    assert salesmachine.account_body(samples.signup()) == {
        "account_uid": "acc_7", "params": {"name": "Acme", "domain": "acme.io"},
    }


def test_salesmachine_account_needs_an_account() -> None:
    ev = samples.signup()
    del ev["contact"]["account"]
    with pytest.raises(PermanentError, match="contact.account"):
        salesmachine.account_body(ev)


# -- PersonaClick ---------------------------------------------------------------------------------------

SHOP = "0d42fd8b713d0752776ca589cc0056"


def test_personaclick_membership_matches_the_documented_example() -> None:
    body = personaclick.membership_body(samples.segment_join(), SHOP, "s3cret", {"vip": 100500})
    assert body == {"shop_id": SHOP, "shop_secret": "s3cret", "email": "ada@example.com",
                    "phone": "+4400114527199", "segment_id": 100500}


@pytest.mark.parametrize(
    ("segment_id", "mapping", "expected"),
    [
        ("vip", {"vip": 100500}, 100500),
        ("100501", {}, 100501),
        ("200", {"200": 100500}, 100500),  # the mapping wins over a numeric id
        ("0042", {}, 42),
    ],
)
def test_personaclick_segment_id(segment_id: str, mapping: dict[str, int], expected: int) -> None:
    assert personaclick.segment_id(samples.segment_join(segment_id), mapping) == expected


@pytest.mark.parametrize("segment_id", ["gold", "12a", "-5", "١٢"])
def test_personaclick_unmapped_segment_is_permanent(segment_id: str) -> None:
    with pytest.raises(PermanentError, match="segments"):
        personaclick.segment_id(samples.segment_join(segment_id), {"vip": 100500})


@pytest.mark.parametrize(
    ("contact", "ident"),
    [
        ({"id": "c", "email": "a@b.c"}, {"email": "a@b.c"}),
        ({"id": "c", "phone": "+1"}, {"phone": "+1"}),
        ({"id": "c", "email": "a@b.c", "phone": "+1"}, {"email": "a@b.c", "phone": "+1"}),
    ],
)
def test_personaclick_purge_names_the_person(contact: dict[str, str], ident: dict[str, str]) -> None:
    assert personaclick.purge_body(_event("contact.delete", contact), SHOP, "s") == {
        "shop_id": SHOP, "shop_secret": "s", **ident,
    }


# -- Infinity -------------------------------------------------------------------------------------------


def test_infinity_criteria_match_the_documented_encoding() -> None:
    pairs = infinity.criteria_pairs([{"field": "act", "op": "begins", "value": 12}])
    assert form_encode(pairs) == "criteria%5B0%5D%5Bfield%5D=act&criteria%5B0%5D%5Bop%5D=begins&criteria%5B0%5D%5Bvalue%5D=12"


def test_infinity_sorted_segments_match_the_documented_encoding() -> None:
    assert form_encode(infinity.order_form(["401", "400"])) == "sortedSegments%5B%5D=401&sortedSegments%5B%5D=400"


def test_infinity_filters_match_the_documented_encoding() -> None:
    assert form_encode(infinity.ref_filter("sectionAbcd")) == "filter%5B%5D=segmentRef-eq-value-sectionAbcd"
    assert form_encode(infinity.group_filter("Customers")) == "filter%5B%5D=segmentGroupName-eq-value-Customers"


def test_infinity_segment_form() -> None:
    form = infinity.segment_form(samples.SEGMENT, "10")
    assert form == [
        ("segmentName", "VIP customers"), ("segmentRef", "vip"), ("segmentOrder", "1"), ("segmentGroupId", "10"),
        ("criteria[0][field]", "act"), ("criteria[0][op]", "begins"), ("criteria[0][value]", "12"),
    ]


def test_infinity_values_are_encoded_safely() -> None:
    segment = {"id": "a&b=c", "name": "x y+z", "criteria": [{"field": "f", "op": "eq", "value": True}]}
    form = infinity.segment_form(segment, None)
    assert form_encode(form) == (
        "segmentName=x+y%2Bz&segmentRef=a%26b%3Dc"
        "&criteria%5B0%5D%5Bfield%5D=f&criteria%5B0%5D%5Bop%5D=eq&criteria%5B0%5D%5Bvalue%5D=1"
    )


def test_infinity_criterion_without_op_is_permanent() -> None:
    with pytest.raises(PermanentError, match="criterion 0 has no op"):
        infinity.criteria_pairs([{"field": "act", "value": 1}])


@pytest.mark.parametrize(
    ("order", "expected"),
    [(1, ["402", "400", "401"]), (2, ["400", "402", "401"]), (3, ["400", "401", "402"]), (9, ["400", "401", "402"])],
)
def test_infinity_reorder_moves_the_event_segment(order: int, expected: list[str]) -> None:
    rows = [
        {"segment": "400", "segmentRef": "a", "segmentOrder": "1"},
        {"segment": "401", "segmentRef": "b", "segmentOrder": "2"},
        {"segment": "402", "segmentRef": "vip", "segmentOrder": "3"},
    ]
    assert infinity.reordered(rows, "vip", order) == expected


@pytest.mark.parametrize(("group", "name"), [("Customers", "Customers"), ({"name": "Leads"}, "Leads")])
def test_infinity_group_name(group: Any, name: str) -> None:
    assert infinity.group_name(samples.segment_upsert(group=group)) == name


def test_infinity_group_name_missing_is_permanent() -> None:
    with pytest.raises(PermanentError):
        infinity.group_name(samples.segment_upsert(group=None))
