"""`python -m worker`: one arq worker (the Procfile's `worker:` process).

If Redis fails under arq's own loop (a restart longer than the clients ride out, or a connection lost while
arq WATCHes a key, which redis-py reports as a WatchError), arq's loop stops; the worker then starts again
after a pause instead of exiting, and jobs it held are taken up as after a crash.
"""

from __future__ import annotations

import asyncio
import time

import structlog
import uvloop
from arq.worker import run_worker
from redis.exceptions import RedisError

from config.logging import configure_logging
from config.settings import load_or_exit
from worker.app import worker_settings

RESTART_PAUSE = 2.0


def main() -> None:
    settings = load_or_exit()
    configure_logging()
    log = structlog.get_logger("sluice.worker")
    while True:
        # uvloop, like the ingress: the worker's time goes to sockets (HTTP to vendors, Redis), which uvloop
        # makes cheaper than asyncio's selector loop; arq runs on the current event loop.
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            run_worker(worker_settings(settings))  # type: ignore[arg-type]
            return
        except (RedisError, OSError) as exc:
            log.error("redis_failed", error=f"{type(exc).__name__}: {exc}", restart_in=RESTART_PAUSE)
            time.sleep(RESTART_PAUSE)
        finally:
            loop.close()


if __name__ == "__main__":
    main()
