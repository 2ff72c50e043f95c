"""Driving real arq workers from tests: burst mode, bounded in time, no sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

from config.settings import Settings
from worker.app import worker_settings
from worker.arq_worker import SluiceWorker
from worker.deps import Deps


async def run_burst(settings: Settings, deps: Deps | None = None, *, timeout: float = 30.0, **overrides: Any) -> SluiceWorker:
    """Run one burst worker until the queue (deferred retries included) is empty; returns it for its counters."""
    options = worker_settings(settings, burst=True, poll_delay=0.005, handle_signals=False, **overrides)
    worker = SluiceWorker(**options, ctx={"deps": deps} if deps is not None else {})
    try:
        await asyncio.wait_for(worker.main(), timeout)
    finally:
        await worker.close()
    return worker
