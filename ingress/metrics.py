"""`/metrics` in Prometheus text format (SPEC section 6): the ingress's own counters, plus the fleet's.

Workers push their vendor-call counters and latency buckets into one Redis hash (store.metrics); queue depth
and dead letters by vendor are read from Redis at scrape time. So one scrape of any ingress shows the whole
system, however many workers run and wherever they run. Each app has its own registry (no globals).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from ingress.state import WebhookResult
from store.keys import Keys
from store.metrics import BUCKETS, FleetMetrics, bucket_label

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""`sluice_ingress_request_seconds` buckets (upper bounds, inclusive; +Inf after them)."""


class IngressMetrics:
    """The ingress's own counters, kept as plain numbers and turned into Prometheus families at scrape time
    (`_Local`): a webhook adds to a dict entry and a bucket, where prometheus-client's labelled Counter and
    Histogram take a lock and check their labels on every request (bench/README.md)."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str, str], int] = {}
        """Webhook requests by (source, event type, outcome)."""
        self.buckets = [0] * (len(REQUEST_BUCKETS) + 1)
        self.seconds_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Local(self))

    def observe(self, result: WebhookResult) -> None:
        """The ingress's observer: one count per webhook request. An unknown source is counted as "unknown",
        so a stranger cannot grow the label set."""
        source = "unknown" if result.outcome == "unknown_source" else result.source
        labels = (source, result.event_type or "unknown", result.outcome or "unknown")
        self.events[labels] = self.events.get(labels, 0) + 1
        seconds = result.duration_ms / 1000
        self.buckets[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        self.seconds_sum += seconds

    def render_local(self) -> bytes:
        return generate_latest(self.registry)

    async def render(self, redis: Redis, keys: Keys) -> bytes:
        """The text exposition of this process's metrics and the fleet's, read from Redis now."""
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.metrics)
            pipe.zcard(keys.queue)
            pipe.hgetall(keys.dead_counts)
            raw_fleet, depth, raw_dead = await pipe.execute()
        snapshot = _Snapshot(FleetMetrics.parse(raw_fleet), int(depth),
                             {k.decode(): int(v) for k, v in raw_dead.items()})
        registry = CollectorRegistry(auto_describe=False)
        registry.register(snapshot)
        return generate_latest(self.registry) + generate_latest(registry)


class _Local(Collector):
    def __init__(self, metrics: IngressMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily("sluice_events_received", "Webhook requests by source, event type and "
                                     "outcome (queued, duplicate, or the rejection reason).",
                                     labels=["source", "type", "outcome"])
        for labels, count in sorted(self.metrics.events.items()):
            events.add_metric(list(labels), count)
        yield events
        running, cumulative = 0, []
        for le, count in zip((*map(str, REQUEST_BUCKETS), "+Inf"), self.metrics.buckets, strict=True):
            running += count
            cumulative.append((le, running))
        seconds = HistogramMetricFamily("sluice_ingress_request_seconds", "Time to answer a webhook request.")
        seconds.add_metric([], cumulative, self.metrics.seconds_sum)
        yield seconds


class _Snapshot(Collector):
    def __init__(self, fleet: FleetMetrics, depth: int, dead: dict[str, int]) -> None:
        self.fleet, self.depth, self.dead = fleet, depth, dead

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("sluice_vendor_calls", "Vendor calls by vendor, operation and outcome "
                                    "(succeeded, retrying, dead, skipped, rate_limited), all workers.",
                                    labels=["vendor", "operation", "outcome"])
        for (vendor, operation, outcome), count in sorted(self.fleet.calls.items()):
            calls.add_metric([vendor, operation, outcome], count)
        yield calls
        latency = HistogramMetricFamily("sluice_vendor_call_seconds", "Vendor call latency, all workers.",
                                        labels=["vendor"])
        for vendor, buckets in sorted(self.fleet.latency_buckets.items()):
            running, cumulative = 0, []
            for le in BUCKETS:
                running += buckets.get(bucket_label(le), 0)
                cumulative.append((bucket_label(le), running))
            latency.add_metric([vendor], cumulative, self.fleet.latency_sum.get(vendor, 0.0))
        yield latency
        yield GaugeMetricFamily("sluice_queue_depth", "Delivery jobs in the queue (due and deferred).",
                                value=self.depth)
        dead = GaugeMetricFamily("sluice_dead_letters", "Dead letters stored now, by vendor.", labels=["vendor"])
        for vendor, count in sorted(self.dead.items()):
            dead.add_metric([vendor], count)
        yield dead
