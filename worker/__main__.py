"""`python -m worker`: one arq worker (the Procfile's `worker:` process), `worker.arq_worker.SluiceWorker`.

If Redis fails under arq's own loop (a restart longer than the clients ride out, or a connection lost inside
a transaction, which redis-py may report as a WatchError), arq's loop stops; the worker then starts again
after a pause instead of exiting, and jobs it held are taken up as after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import structlog
import uvloop
from redis.exceptions import RedisError

from config.logging import configure_logging
from config.process import freeze_startup_heap
from config.settings import load_or_exit
from core.errors import ConfigError
from store.connection import refuse_cluster_now
from store.keys import Keys
from worker.app import worker_settings
from worker.arq_worker import SluiceWorker

RESTART_PAUSE = 2.0


def run_worker(options: dict[str, Any]) -> None:
    """Run one arq worker (with one-round-trip claims, worker/arq_worker.py) until it stops."""
    SluiceWorker(**options).run()


def main() -> None:
    settings = load_or_exit()
    try:
        refuse_cluster_now(settings)
    except ConfigError as exc:
        print(f"sluice: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging()
    # arq logs two INFO lines per job run; the canonical line per vendor call (SPEC section 6) says more, and
    # the pair cost ~3 % of a busy worker's CPU. arq's warnings and errors still come through.
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    log = structlog.get_logger("sluice.worker")
    log.info("worker_starting", queue=Keys(settings.namespace).queue, max_jobs=settings.worker.max_jobs)
    freeze_startup_heap()
    while True:
        # uvloop, like the ingress: the worker's time goes to sockets (HTTP to vendors, Redis), which uvloop
        # makes cheaper than asyncio's selector loop; arq runs on the current event loop.
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            run_worker(worker_settings(settings))
            return
        except (RedisError, OSError) as exc:
            log.error("redis_failed", error=f"{type(exc).__name__}: {exc}", restart_in=RESTART_PAUSE)
            time.sleep(RESTART_PAUSE)
        finally:
            loop.close()


if __name__ == "__main__":
    main()
