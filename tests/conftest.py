"""Shared fixtures: a real Redis (the one at REDIS_URL or 127.0.0.1:6379 when it answers, else a private
redis-server), a fresh key namespace per test so the shared Redis is never flushed, and settings built
from a plain mapping."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from hypothesis import settings as hypothesis_settings

from config.settings import Settings, settings_from_mapping
from tests.support.redis_server import RedisServer, answers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# CI explores the same inputs on every run (a failure there is reproducible, never a coin toss); a developer's
# runs keep drawing new ones. No deadline: a loaded 2-core machine is slow, not wrong.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if answers(url):
        yield url
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys (and arq's keys for its jobs) are deleted afterwards."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    yield ns
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in (f"{ns}:*", f"arq:*:{ns}:*"):
            batch = list(client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                client.delete(*batch[i : i + 500])
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def base_config(redis_url: str, namespace: str) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "namespace": namespace,
        "ingress": {"max_body_bytes": 1_048_576, "tolerance_seconds": 300, "admin_token": "admin-token-s3cret"},
        "sources": {
            "shopfront": {"scheme": "standard-webhooks", "secrets": [SECRET]},
            "stripey": {"scheme": "stripe", "secrets": ["stripe-secret-one", "stripe-secret-two"]},
            "shopify": {"scheme": "shopify", "secrets": ["shopify-secret-one"]},
        },
        "delivery": {"timeout_seconds": 2, "schedule_seconds": [0.05, 0.1, 0.2], "dedupe_seconds": 3600},
    }


@pytest.fixture
def make_settings(redis_url: str, namespace: str) -> Callable[..., Settings]:
    """`make_settings(vendors={...}, delivery={...})`: the test config with top-level tables replaced."""

    def make(**tables: Any) -> Settings:
        data = base_config(redis_url, namespace)
        data.update(tables)
        return settings_from_mapping(data, {})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


from tests.support.sandbox import sandbox  # noqa: E402,F401  (the vendor emulators over real HTTP)
