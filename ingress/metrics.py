"""`/metrics` in Prometheus text format (SPEC section 6): the ingress's own counters, plus the fleet's.

Workers push their vendor-call counters and latency buckets into one Redis hash (store.metrics); queue depth
and dead letters by vendor are read from Redis at scrape time. So one scrape of any ingress shows the whole
system, however many workers run and wherever they run. Each app has its own registry (no globals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from ingress.state import WebhookResult
from store.keys import Keys
from store.metrics import BUCKETS, FleetMetrics, bucket_label

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "sluice_events_received", "Webhook requests by source, event type and outcome "
            "(queued, duplicate, or the rejection reason).", ["source", "type", "outcome"], registry=self.registry,
        )
        self.request_seconds = Histogram(
            "sluice_ingress_request_seconds", "Time to answer a webhook request.", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self._counts: dict[tuple[str, str, str], Any] = {}
        """The labelled counters, by labels: `labels()` checks and locks on every call. Bounded like the
        label set itself (configured sources, event types, outcomes)."""

    def observe(self, result: WebhookResult) -> None:
        """The ingress's observer: one count per webhook request. An unknown source is counted as "unknown",
        so a stranger cannot grow the label set."""
        source = "unknown" if result.outcome == "unknown_source" else result.source
        labels = (source, result.event_type or "unknown", result.outcome or "unknown")
        count = self._counts.get(labels)
        if count is None:
            count = self._counts[labels] = self.events.labels(*labels)
        count.inc()
        self.request_seconds.observe(result.duration_ms / 1000)

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
