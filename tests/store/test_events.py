"""The per-event view: planned calls with their ledger state."""

import orjson

from core.routing import DEFAULT_ROUTES
from store.calls import CallState, Status
from store.events import event_view
from store.intake import Intake
from store.keys import Keys

EVENT = b'{"id":"evt_1","type":"segment.join","occurred_at":"2026-11-24T10:00:00Z",' \
        b'"contact":{"id":"c1","email":"a@example.com"},"data":{"segment":{"id":"vip","name":"VIP"}}}'


async def test_view_lists_every_planned_call(redis_client, settings) -> None:
    keys = Keys(settings.namespace)
    assert await Intake(redis_client, keys, settings.delivery).accept("shopfront", orjson.loads(EVENT), EVENT)
    await redis_client.hset(keys.calls("shopfront", "evt_1"), "segmetrics.add_tags",
                            CallState(status=Status.SUCCEEDED, attempts=1).dumps())
    view = await event_view(redis_client, keys, DEFAULT_ROUTES, "shopfront", "evt_1")
    assert view is not None and view["event"]["id"] == "evt_1"
    assert view["calls"] == [
        {"vendor": "segmetrics", "operation": "add_tags", "status": "succeeded", "attempts": 1, "last_error": None},
        {"vendor": "salesmachine", "operation": "track_event", "status": "pending", "attempts": 0, "last_error": None},
        {"vendor": "personaclick", "operation": "add_to_segment", "status": "pending", "attempts": 0,
         "last_error": None},
    ]


async def test_unknown_event(redis_client, settings) -> None:
    assert await event_view(redis_client, Keys(settings.namespace), DEFAULT_ROUTES, "shopfront", "nope") is None
