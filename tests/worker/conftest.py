"""Delivery fixtures: settings pointing at the sandbox, and helpers to accept events and drain the queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis

from config.settings import Settings
from store.intake import Intake
from store.keys import Keys


@pytest.fixture
def vendor_settings(make_settings: Callable[..., Settings], sandbox: Any) -> Settings:
    return make_settings(vendors=sandbox.vendor_tables())


class Events:
    def __init__(self, redis: aredis.Redis, settings: Settings) -> None:
        self.keys = Keys(settings.namespace)
        self.intake = Intake(redis, self.keys, settings.delivery)

    async def accept(self, event: dict[str, Any], source: str = "shopfront") -> None:
        assert await self.intake.accept(source, event, orjson.dumps(event))


@pytest.fixture
def events(redis_client: aredis.Redis, vendor_settings: Settings) -> Events:
    return Events(redis_client, vendor_settings)
