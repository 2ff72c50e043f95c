"""What a long-running process (`web:`, `worker:`) does once its start-up is over."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Take everything alive after start-up (modules, classes, the app itself) out of the cyclic garbage
    collector's sight, for good.

    CPython's full collections otherwise walk those ~70,000 objects again and again while requests run: each a
    pause of 15-30 ms on this machine, which is the ingress's p99 under load (bench/README.md). Called by the
    process entry points only, never by tests, since frozen garbage is never freed."""
    gc.collect()
    gc.freeze()
