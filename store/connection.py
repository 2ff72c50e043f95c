"""Redis clients for long-running workers: ride out a Redis restart instead of crashing.

Commands that fail with a connection error are retried with exponential backoff for about 30 s, so a worker
keeps going through a Redis restart or fail-over. (The ingress does the opposite: it answers 503 at once.)
"""

from __future__ import annotations

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]


def patient_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=20)


def worker_redis(url: str) -> Redis:
    return Redis.from_url(url, retry=patient_retry(), retry_on_error=RETRY_ON, socket_connect_timeout=2,
                          socket_timeout=30, health_check_interval=30)


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at `url` within half a second (for start-up checks, not the hot path)."""
    try:
        client = sync_redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (sync_redis.RedisError, OSError, ValueError):
        return False
