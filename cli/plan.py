"""`sluice plan`: the dry run of routing (SPEC section 7). For one event, every vendor call the configured
routes would make, with the exact requests, built by the vendor clients of `handlers/` themselves (the code
the workers run) and handed to a transport that records them and sends nothing.

A vendor client needs an answer to go on (Infinity's upsert looks the group and the segment up before it
creates or updates them; Salesmachine's v2 delete looks the contact up first), so the answers are assumed,
and said to be: they are those of an empty vendor, the sandbox's emulators (`sandbox/`) run in this process
with the configured credentials and no data. Every lookup finds nothing and every write succeeds, so a
find-then-create-or-update shows its create path and a find-then-delete finds nothing to delete. Where the
thing exists at the vendor, the requests after the lookup differ (an update in place of a create, a delete).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from cli.mask import Masker
from config.settings import Settings
from core.errors import BODY_LIMIT, DeliveryError, PermanentError
from core.idempotency import idempotency_key
from core.routing import plan
from handlers.personaclick import segment_id
from handlers.registry import Vendors
from sandbox import SandboxCredentials, SandboxState, create_sandbox_app, sandbox_vendor_tables

ASSUMED = (
    "nothing is sent; the answers are assumed, those of an empty vendor (the sandbox's emulators, in process, "
    "with the configured credentials and no data): every lookup finds nothing, every write succeeds. Where the "
    "thing exists at the vendor, the requests after a lookup differ (an update in place of a create, a delete)."
)

_SANDBOX = "http://sandbox.invalid"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request exactly as the vendor client built it, and the answer it was assumed to get."""

    request: httpx.Request
    status: int
    answer: bytes


@dataclass(slots=True)
class PlannedCall:
    vendor: str
    operation: str
    idempotency_key: str
    outcome: str  # "planned" | "skipped" | "fails" (a permanent error, or one from an assumed answer)
    reason: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)


def sandbox_credentials(settings: Settings) -> SandboxCredentials:
    """The credentials the emulators accept, set to the configured ones, so that they answer what the clients
    send as the real vendors would answer it (an unconfigured vendor keeps the sandbox's own)."""
    v = settings.vendors
    found: dict[str, Any] = {"infinity_forbidden_igrp": 0}  # igrp is at least 1: none is forbidden
    if v.segmetrics is not None:
        found.update(segmetrics_api_key=v.segmetrics.api_key.get_secret_value(),
                     segmetrics_account_id=v.segmetrics.account_id,
                     segmetrics_integration_id=v.segmetrics.integration_id,
                     segmetrics_ads_integration_id=v.segmetrics.ads_integration_id or v.segmetrics.integration_id)
    if v.salesmachine is not None:
        found.update(salesmachine_api_token=v.salesmachine.api_token.get_secret_value(),
                     salesmachine_api_secret=v.salesmachine.api_secret.get_secret_value(),
                     salesmachine_api_token_v2=v.salesmachine.api_token_v2.get_secret_value())
    if v.personaclick is not None:
        found.update(personaclick_shop_id=v.personaclick.shop_id,
                     personaclick_shop_secret=v.personaclick.shop_secret.get_secret_value())
    if v.infinity is not None:
        found.update(infinity_username=v.infinity.username, infinity_password=v.infinity.password.get_secret_value(),
                     infinity_igrp=v.infinity.igrp)
    return SandboxCredentials(**found)


class PlanTransport(httpx.AsyncBaseTransport):
    """Records each request a vendor client hands it, as built, and answers it from an empty in-process sandbox
    (the request is re-addressed from the configured base URL to the emulator's). Nothing leaves the process."""

    def __init__(self, settings: Settings, event: Mapping[str, Any]) -> None:
        self.state = SandboxState(credentials=sandbox_credentials(settings))
        self._seed(settings, event)
        self._sandbox = httpx.ASGITransport(app=create_sandbox_app(self.state), raise_app_exceptions=False)
        tables = sandbox_vendor_tables(_SANDBOX, self.state.credentials)
        self._paths: dict[str, tuple[str, str]] = {}
        for vendor, table in tables.items():
            cfg = settings.vendor(vendor)
            if cfg is not None:
                self._paths[vendor] = (httpx.URL(cfg.base_url).path.rstrip("/"), httpx.URL(table["base_url"]).path)
        self.vendor = ""
        self.exchanges: list[Exchange] = []

    def _seed(self, settings: Settings, event: Mapping[str, Any]) -> None:
        """PersonaClick segments are made in its dashboard, never through the API: the empty vendor has the
        configured ones and the event's, as the real one is assumed to."""
        cfg = settings.vendors.personaclick
        if cfg is None:
            return
        wanted = set(cfg.segments.values())
        try:
            wanted.add(segment_id(event, cfg.segments))
        except PermanentError:  # no segment, or an unmapped one: the client says so itself
            pass
        for sid in wanted:
            self.state.personaclick.add_segment(int(sid))

    def begin(self, vendor: str) -> None:
        """The next requests are one call of `vendor`."""
        self.vendor = vendor
        self.exchanges = []

    def _readdressed(self, request: httpx.Request) -> httpx.Request:
        configured, emulated = self._paths[self.vendor]
        target = request.url.raw_path.decode("ascii")
        if not target.startswith(configured):
            raise httpx.UnsupportedProtocol(f"{request.url.path} is not under the configured base URL", request=request)
        url = httpx.URL(f"{_SANDBOX}{emulated}{target[len(configured):]}")
        return httpx.Request(request.method, url, headers=request.headers, content=request.content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self._sandbox.handle_async_request(self._readdressed(request))
        body = await answer.aread()
        self.exchanges.append(Exchange(request, answer.status_code, body))
        return answer

    async def aclose(self) -> None:
        await self._sandbox.aclose()


def skip_reason(settings: Settings, vendor: str, operation: str) -> str:
    if settings.vendor(vendor) is None:
        return f"{vendor} is not configured (no [vendors.{vendor}] table)"
    return f"{vendor}.{operation} needs api_token_v2"  # the one operation-level setting (is_configured)


async def dry_run(settings: Settings, event: Mapping[str, Any], source: str) -> list[PlannedCall]:
    """Every call the routes make of `event`, in table order, each with the requests its client built."""
    transport = PlanTransport(settings, event)
    vendors = Vendors(settings, transport)
    calls: list[PlannedCall] = []
    try:
        for vendor, operation in plan(event, settings.route_table):
            key = idempotency_key(source, str(event["id"]), vendor, operation)
            if not vendors.is_configured(vendor, operation):
                calls.append(PlannedCall(vendor, operation, key, "skipped", skip_reason(settings, vendor, operation)))
                continue
            transport.begin(vendor)
            try:
                await vendors.perform(vendor, operation, event, idempotency_key=key,
                                      timeout=settings.delivery.timeout_seconds)
            except DeliveryError as exc:
                calls.append(PlannedCall(vendor, operation, key, "fails", exc.message, transport.exchanges))
            except Exception as exc:  # a bug shows as this call's failure, as the worker dead-letters it
                reason = f"internal error in {vendor}.{operation}: {type(exc).__name__}: {exc}"
                calls.append(PlannedCall(vendor, operation, key, "fails", reason, transport.exchanges))
            else:
                calls.append(PlannedCall(vendor, operation, key, "planned", None, transport.exchanges))
    finally:
        await transport.aclose()
    return calls


def shown(calls: list[PlannedCall], masker: Masker) -> list[dict[str, Any]]:
    """The calls as plain data with credentials masked: the `--json` form, and what the table prints."""
    return [
        {
            "vendor": call.vendor,
            "operation": call.operation,
            "idempotency_key": call.idempotency_key,
            "outcome": call.outcome,
            "reason": None if call.reason is None else masker.text(call.reason),
            "requests": [
                {
                    "method": x.request.method,
                    "url": masker.url(str(x.request.url)),
                    "headers": {name.decode("latin-1"): masker.header(name.decode("latin-1"), value.decode("latin-1"))
                                for name, value in x.request.headers.raw},
                    "body": masker.text(x.request.content.decode("utf-8", errors="replace")) or None,
                    "assumed_answer": {"status": x.status,
                                       "body": masker.text(x.answer[:BODY_LIMIT].decode("utf-8", errors="replace"))},
                }
                for x in call.exchanges
            ],
        }
        for call in calls
    ]
