"""Handlers talk to the vendor sandbox over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from config.settings import Settings, settings_from_mapping
from core.clock import FrozenClock
from handlers.registry import Vendors, build_http_client
from tests.support.sandbox import SandboxServer, sandbox  # noqa: F401  (the fixture)

KEY = "sluice-" + "ab" * 32


@pytest.fixture
def vendor_settings(sandbox: SandboxServer) -> Callable[..., Settings]:
    """Settings whose vendor tables point at the sandbox; keyword arguments patch a vendor's table."""

    def make(**patches: dict[str, Any] | None) -> Settings:
        tables = sandbox.vendor_tables()
        for vendor, patch in patches.items():
            if patch is None:
                tables.pop(vendor)
            else:
                tables[vendor] = {**tables[vendor], **patch}
        return settings_from_mapping({"vendors": tables, "delivery": {"timeout_seconds": 2}}, {})

    return make


@pytest.fixture
async def http(vendor_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(vendor_settings()) as client:
        yield client


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_795_000_000.0)


@pytest.fixture
def make_vendors(
    vendor_settings: Callable[..., Settings], http: httpx.AsyncClient, clock: FrozenClock
) -> Callable[..., Vendors]:
    def make(**patches: dict[str, Any] | None) -> Vendors:
        return Vendors(vendor_settings(**patches), http, clock=clock)

    return make


@pytest.fixture
def vendors(make_vendors: Callable[..., Vendors]) -> Vendors:
    return make_vendors()


@pytest.fixture
def perform(vendors: Vendors) -> Callable[..., Any]:
    """`await perform("segmetrics", "upsert_contact", event)` with a fixed key and a 2 s budget."""

    async def run(vendor: str, operation: str, event: Any, *, key: str = KEY, timeout: float = 2.0) -> None:
        await vendors.perform(vendor, operation, event, idempotency_key=key, timeout=timeout)

    return run
