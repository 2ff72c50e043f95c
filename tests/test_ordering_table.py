"""core/ordering.py as data: every vendor operation says what it writes, and every sample event's calls can be
placed (scope and subjects) without the vendor clients."""

from __future__ import annotations

import pytest

from cli.samples import sample_event
from core.ordering import SUBJECTS, event_tags, ordered, scope_of
from core.routing import DEFAULT_ROUTES, EVENT_TYPES, OPERATIONS, plan

FACTS = {"salesmachine.track_event", "segmetrics.add_ad_performance"}


def test_every_operation_is_in_the_table_and_nothing_else() -> None:
    operations = {f"{vendor}.{op}" for vendor, ops in OPERATIONS.items() for op in ops}
    assert set(SUBJECTS) == operations
    assert all(SUBJECTS[name] is None for name in FACTS)  # facts are never superseded by another fact


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_routed_call_of_a_sample_event_has_its_place(event_type: str) -> None:
    event = sample_event(event_type, 1_795_000_000.0, "evt_1")
    for vendor, operation in plan(event, DEFAULT_ROUTES):
        rule = ordered(event, vendor, operation)
        if f"{vendor}.{operation}" in FACTS or event_type == "ad.performance":
            assert rule.subjects == ()
        else:
            assert rule.scope is not None and rule.subjects, (vendor, operation)
            assert all(subject.startswith(f"{vendor}|") for subject in rule.subjects)


def test_scopes_and_subjects_name_the_thing() -> None:
    join = sample_event("segment.join", 0, "e")
    assert scope_of(join) == "contact:cus_42"
    assert ordered(join, "segmetrics", "add_tags").subjects == ("segmetrics|tag:VIP customers",)
    assert ordered(join, "personaclick", "add_to_segment").subjects == ("personaclick|membership:vip",)
    assert scope_of(sample_event("segment.upsert", 0, "e")) == "segment:vip"
    assert scope_of(sample_event("ad.performance", 0, "e")) is None
    assert event_tags(sample_event("churn", 0, "e")) == ["churned"]
    broken = {**join, "data": {}}  # does not fit the operation: no subject (the vendor client refuses it)
    assert ordered(broken, "personaclick", "add_to_segment").subjects == ()

