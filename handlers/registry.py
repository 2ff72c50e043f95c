"""The face of `handlers` for the worker: `Vendors.perform(vendor, operation, event, ...)` and the pooled
HTTP client every vendor call of a process goes through."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from config.settings import Settings
from core.clock import Clock, system_clock
from core.errors import DeliveryError, PermanentError, TransientError
from core.routing import OPERATIONS
from handlers.base import Call, Deadline, VendorClient
from handlers.infinity import InfinityClient
from handlers.personaclick import PersonaClickClient
from handlers.salesmachine import V2_OPERATIONS, SalesmachineClient
from handlers.segmetrics import SegMetricsClient
from handlers.transport import VendorTransport


def build_http_client(settings: Settings) -> VendorTransport:
    """One pooled HTTP transport per process (HTTP/1.1 keep-alive, aiohttp's pool under httpx's API), sized so
    that every job's calls can be in flight at once; connections stay open 30 s for reuse. Vendor clients set
    everything per request: `User-Agent: sluice/<version>`, the time left of the operation's budget as every
    timeout; redirects are never followed (a vendor that redirects a POST is misconfigured)."""
    concurrency = max(settings.worker.max_jobs * 3, 10)  # a job sends its event's calls (~3) at once
    return VendorTransport(limits=httpx.Limits(max_connections=concurrency, keepalive_expiry=30.0))


class Vendors:
    """The four vendor clients built from settings; one `perform` per vendor operation."""

    def __init__(self, settings: Settings, http: httpx.AsyncBaseTransport, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self._clients: dict[str, VendorClient] = {}
        v = settings.vendors
        if v.segmetrics is not None:
            self._clients["segmetrics"] = SegMetricsClient(v.segmetrics, http, clock=clock)
        if v.salesmachine is not None:
            self._clients["salesmachine"] = SalesmachineClient(v.salesmachine, http, clock=clock)
        if v.personaclick is not None:
            self._clients["personaclick"] = PersonaClickClient(v.personaclick, http, clock=clock)
        if v.infinity is not None:
            self._clients["infinity"] = InfinityClient(v.infinity, http, clock=clock)

    def is_configured(self, vendor: str, operation: str) -> bool:
        """False when the call must be recorded as 'skipped': the vendor has no config table, or
        (salesmachine v2 operations list/get/delete contact/account) api_token_v2 is empty."""
        client = self._clients.get(vendor)
        if client is None:
            return False
        if isinstance(client, SalesmachineClient) and operation in V2_OPERATIONS:
            return client.has_v2
        return True

    async def perform(
        self,
        vendor: str,
        operation: str,
        event: Mapping[str, Any],
        *,
        idempotency_key: str,
        timeout: float,
    ) -> int | None:
        """Do one vendor operation for one event. Returns on success (the last HTTP status; None when no
        request was needed); raises TransientError (with
        retry_after when the vendor sent Retry-After) or PermanentError (status + first 2 KiB of body).
        `timeout` is the total budget in seconds for the whole operation. Never sleeps, never retries."""
        if operation not in OPERATIONS.get(vendor, ()):
            raise PermanentError(f"unknown operation {vendor}.{operation}")
        client = self._clients.get(vendor)
        if client is None:
            raise PermanentError(f"{vendor} is not configured")
        method = getattr(client, operation)
        call = Call(idempotency_key, Deadline(timeout))
        try:
            async with asyncio.timeout(timeout):
                await method(event, call)
        except DeliveryError:
            raise
        except TimeoutError:
            raise TransientError(f"{vendor}.{operation} did not finish within {timeout:g}s") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # an event that does not fit the operation (a routing override, say): not worth a retry
            raise PermanentError(
                f"{vendor}.{operation} cannot map this event ({type(exc).__name__}: {exc})"
            ) from None
        return call.last_status
