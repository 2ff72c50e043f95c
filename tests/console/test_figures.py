"""The overview's figures and chart, and the templates' escaping and call states, without a browser."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.clock import FrozenClock
from ingress.console.chart import HEIGHT, TOP, BOTTOM, calls_chart, nice_ceiling
from ingress.console.figures import CallHistory, difference, last_accepted, outcome_totals, read_fleet, sampling
from ingress.console.render import build_templates, excerpt, when
from store.keys import Keys
from store.metrics import FleetMetrics

NOW = 1_795_003_600.0


async def test_the_intake_script_notes_the_last_event_accepted_per_source(redis_client, settings) -> None:
    """Fleet-wide: whichever ingress accepted it; a duplicate changes nothing."""
    from store.intake import Intake

    keys = Keys(settings.namespace)
    intake = Intake(redis_client, keys, settings.delivery, FrozenClock(NOW))
    assert await intake.accept("shop", {"id": "evt_1", "type": "signup"}, b"{}")
    intake.clock = FrozenClock(NOW + 5)
    assert not await intake.accept("shop", {"id": "evt_1", "type": "signup"}, b"{}")
    assert await intake.accept("other", {"id": "evt_2", "type": "refund"}, b"{}")
    seen = last_accepted(await redis_client.hgetall(keys.last_accepted))
    assert (seen["shop"].event_id, seen["shop"].event_type, seen["shop"].at) == ("evt_1", "signup", NOW)
    assert (seen["other"].event_id, seen["other"].at) == ("evt_2", NOW + 5)
    assert last_accepted({b"bad": b"not|a"}) == {}


def test_outcome_totals_sum_over_vendors_and_operations() -> None:
    fleet = FleetMetrics.parse({b"call|a|x|succeeded": b"3", b"call|b|y|succeeded": b"4", b"call|a|x|dead": b"1",
                                b"lat|a|0.01": b"9"})
    assert outcome_totals(fleet) == {"succeeded": 7, "dead": 1}


def test_a_counter_that_went_down_counts_from_zero() -> None:
    assert difference({"succeeded": 10, "dead": 2}, {"succeeded": 4, "dead": 5}) == {"succeeded": 6, "dead": 2}


def test_history_gives_minutes_and_the_last_hour() -> None:
    history = CallHistory()
    assert history.last_hour(NOW, {"succeeded": 5}) == (None, {})
    for minute in range(70):  # 70 readings a minute apart; only the last 61 are kept
        history.add(NOW - 69 * 60 + minute * 60, {"succeeded": minute * 10, "dead": minute // 10})
    assert len(history.readings) == 61
    current = {"succeeded": 700, "dead": 7}
    since, counts = history.last_hour(NOW + 30, current)  # from the oldest reading within the hour
    assert since == NOW - 59 * 60 and counts == {"succeeded": 700 - 100, "dead": 7 - 1}
    minutes = history.per_minute(NOW + 30, current)
    assert len(minutes) == 60 and minutes[0] == (NOW - 59 * 60, {"succeeded": 10, "dead": 0})
    assert minutes[-1] == (NOW, {"succeeded": 10, "dead": 1})


async def test_a_reading_comes_from_the_workers_hash(redis_client, namespace) -> None:
    keys = Keys(namespace)
    await redis_client.hset(keys.metrics, mapping={"call|segmetrics|upsert_contact|succeeded": 4,
                                                   "call|infinity|upsert_contact|retrying": 2})
    history = CallHistory()
    await history.sample(redis_client, keys, NOW)
    assert list(history.readings) == [(NOW, {"succeeded": 4, "retrying": 2})]


async def test_fleet_figures(redis_client, namespace) -> None:
    keys = Keys(namespace)
    await redis_client.hset(keys.dead_counts, mapping={"segmetrics": 3, "infinity": 0})
    await redis_client.zadd(keys.queue, {"a": NOW * 1000 - 1, "b": NOW * 1000 + 60_000})
    fleet = await read_fleet(redis_client, keys, NOW)
    assert (fleet.dead_letters, fleet.queue_depth, fleet.queue_due, fleet.calls) == ({"segmetrics": 3}, 2, 1, {})


class SwallowsCancel:
    """A Redis whose read, like redis-py's connect at a bad moment, swallows the cancel of its task."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        return {}


async def test_sampling_stops_at_once_even_when_a_cancel_is_swallowed() -> None:
    """Else the ingress's shutdown would wait up to a minute for the next reading."""
    redis = SwallowsCancel()
    history = CallHistory()
    async with asyncio.timeout(5):
        async with sampling(history, redis, Keys("t"), FrozenClock(NOW)):  # type: ignore[arg-type]
            await redis.started.wait()


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20),
                                                (48, 50), (51, 100), (999, 1000), (1001, 2000)])
def test_nice_ceiling(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_chart_stacks_outcomes_to_scale() -> None:
    minutes = [(NOW - 120, {"succeeded": 30, "dead": 10}), (NOW - 60, {"retrying": 5})]
    chart = calls_chart(minutes, NOW)
    plot_h = HEIGHT - TOP - BOTTOM
    first = [bar for bar in chart.bars if bar.x == chart.bars[0].x]
    assert [bar.outcome for bar in first] == ["succeeded", "dead"]  # the order of OUTCOMES, bottom up
    assert first[0].height == pytest.approx(plot_h * 30 / 50, abs=0.1) and first[1].y < first[0].y
    assert [label.text for label in chart.y_labels] == ["0", "25", "50"]
    assert chart.y_labels[0].y > chart.y_labels[-1].y  # 0 at the bottom
    assert not chart.empty and calls_chart([], NOW).empty


def test_when_and_excerpt() -> None:
    assert when(NOW) == "2026-11-18 12:06:40 UTC" and when("2026-11-24T10:00:00.000Z") == "2026-11-24 10:00:00 UTC"
    assert when(None) == "—" and when("garbage") == "garbage"
    assert excerpt("x" * 2005).endswith("… (5 more characters)") and excerpt(None) == ""


def render_calls(**changes: Any) -> str:
    call = {"vendor": "salesmachine", "operation": "track_event", "status": "superseded", "attempts": 0,
            "last_error": None, "superseded_by": "evt_newer", "next_at": None, **changes}
    template = build_templates().get_template("_calls.html")
    return template.render(source="shopfront", event_id="evt_old", calls=[call],
                           polling=call["status"] in ("pending", "retrying"))


def test_a_superseded_call_links_to_the_event_that_superseded_it() -> None:
    html = render_calls()
    assert 'href="/console/events/shopfront/evt_newer"' in html and "s-superseded" in html
    assert "hx-trigger" not in html


def test_a_pending_call_keeps_the_table_refreshing_and_errors_are_escaped() -> None:
    html = render_calls(status="retrying", superseded_by=None, next_at=NOW, attempts=2,
                        last_error={"status": 503, "message": "<script>x</script>"})
    assert 'hx-trigger="every 1s"' in html and "2026-11-18 12:06:40 UTC" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
