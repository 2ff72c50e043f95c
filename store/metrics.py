"""Worker metrics pushed through Redis, so the ingress's /metrics shows the whole fleet in one scrape.

Workers add to one hash in the same pipeline as their ledger writes (no extra round trip, no per-worker
port to scrape), the increments of a whole batch summed; the ingress reads the hash at scrape time. Fields:
    call|<vendor>|<operation>|<outcome>    count of vendor calls by outcome
    lat|<vendor>|<le>                      count of calls with latency <= le seconds (non-cumulative bucket)
    latsum|<vendor>                        total latency in microseconds
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from store.batch import Counters

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


def bucket_label(le: float) -> str:
    return "+Inf" if le == float("inf") else repr(le)


def call_counters(key: str, vendor: str, operation: str, outcome: str, seconds: float | None) -> Counters:
    """The counter increments of one finished vendor call (for `PipelineBatcher.submit(counters=...)`)."""
    counters = {(key, f"call|{vendor}|{operation}|{outcome}"): 1}
    if seconds is not None:
        le = BUCKETS[bisect_left(BUCKETS, seconds)]
        counters[(key, f"lat|{vendor}|{bucket_label(le)}")] = 1
        counters[(key, f"latsum|{vendor}")] = int(seconds * 1_000_000)
    return counters


@dataclass
class FleetMetrics:
    calls: dict[tuple[str, str, str], int] = field(default_factory=dict)
    latency_buckets: dict[str, dict[str, int]] = field(default_factory=dict)
    latency_sum: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> FleetMetrics:
        out = cls()
        for k, v in raw.items():
            parts = k.decode().split("|")
            if parts[0] == "call" and len(parts) == 4:
                out.calls[(parts[1], parts[2], parts[3])] = int(v)
            elif parts[0] == "lat" and len(parts) == 3:
                out.latency_buckets.setdefault(parts[1], {})[parts[2]] = int(v)
            elif parts[0] == "latsum" and len(parts) == 2:
                out.latency_sum[parts[1]] = int(v) / 1_000_000
        return out
