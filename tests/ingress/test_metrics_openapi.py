"""/metrics shows the ingress's counters and the fleet's (pushed by workers through Redis); /openapi.json
describes every route."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from store.keys import Keys
from tests.ingress.conftest import signed

BODY = b'{"id":"evt_m","type":"signup","occurred_at":"2026-11-24T10:00:00Z",' \
       b'"contact":{"id":"c","email":"a@example.com"},"data":{}}'


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_outcomes_and_read_the_fleet(client, clock, redis_client, namespace) -> None:
    await client.post("/webhooks/shopfront", content=BODY, headers=signed("shopfront", BODY, clock()))
    await client.post("/webhooks/shopfront", content=BODY, headers=signed("shopfront", BODY, clock()))
    await client.post("/webhooks/shopfront", content=BODY, headers={"content-type": "application/json"})
    await client.post("/webhooks/nobody-knows-me", content=BODY, headers={"content-type": "application/json"})
    keys = Keys(namespace)
    await redis_client.hset(keys.metrics, mapping={"call|segmetrics|upsert_contact|succeeded": 7,
                                                   "lat|segmetrics|0.05": 7, "latsum|segmetrics": 210_000})
    await redis_client.hset(keys.dead_counts, mapping={"salesmachine": 2})
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    events = "sluice_events_received_total"
    assert found[(events, (("outcome", "queued"), ("source", "shopfront"), ("type", "signup")))] == 1
    assert found[(events, (("outcome", "duplicate"), ("source", "shopfront"), ("type", "signup")))] == 1
    assert found[(events, (("outcome", "invalid_signature"), ("source", "shopfront"), ("type", "unknown")))] == 1
    assert found[(events, (("outcome", "unknown_source"), ("source", "unknown"), ("type", "unknown")))] == 1
    assert found[("sluice_vendor_calls_total", (("operation", "upsert_contact"), ("outcome", "succeeded"),
                                                 ("vendor", "segmetrics")))] == 7
    assert found[("sluice_vendor_call_seconds_count", (("vendor", "segmetrics"),))] == 7
    assert found[("sluice_queue_depth", ())] == 1
    assert found[("sluice_dead_letters", (("vendor", "salesmachine"),))] == 2


async def test_openapi_describes_every_route(client) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/webhooks/{source}", "/healthz", "/readyz", "/metrics", "/openapi.json",
        "/admin/events/{source}/{event_id}", "/admin/dead-letters", "/admin/dead-letters/replay",
        "/admin/dead-letters/{id}", "/admin/dead-letters/{id}/replay",
    }
    webhook = doc["paths"]["/webhooks/{source}"]["post"]["responses"]
    assert set(webhook) == {"200", "202", "400", "401", "404", "408", "413", "415", "503"}  # 408: body deadline
    assert "Event" in doc["components"]["schemas"]


async def test_every_other_route_logs_one_line(client) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200
    lines = [(x["event"], x["path"], x["status"]) for x in logs]
    assert lines == [("request", p, 200) for p in ("/healthz", "/readyz", "/metrics", "/openapi.json")]


def test_request_seconds_buckets_are_inclusive_and_cumulative() -> None:
    """The ingress's histogram, kept as plain counts: a value on a bound counts in that bucket, as Prometheus's
    `le` says; buckets are cumulative and +Inf holds every observation."""
    from ingress.metrics import IngressMetrics
    from ingress.state import WebhookResult

    metrics = IngressMetrics()
    for ms in (0.5, 1.0, 2.5, 999.0, 5000.0):
        metrics.observe(WebhookResult(source="s", status=202, outcome="queued", event_type="signup", duration_ms=ms))
    found = samples(metrics.render_local().decode())
    bucket = "sluice_ingress_request_seconds_bucket"
    assert found[(bucket, (("le", "0.001"),))] == 2
    assert found[(bucket, (("le", "0.0025"),))] == 3
    assert found[(bucket, (("le", "1.0"),))] == 4
    assert found[(bucket, (("le", "+Inf"),))] == 5
    assert found[("sluice_ingress_request_seconds_count", ())] == 5
    assert found[("sluice_events_received_total", (("outcome", "queued"), ("source", "s"), ("type", "signup")))] == 5
