"""The sandbox as one Starlette app: the four emulators under their prefixes, every request recorded,
queued faults applied before an emulator sees the request, and a control API under `/_sandbox/` so another
process can drive it:

    POST   /_sandbox/faults      JSON {vendor, status, times, path_contains, method, retry_after, delay,
                                  drop, body, content_type, probability, seed} -> 201
    DELETE /_sandbox/faults      forget queued faults -> 204
    GET    /_sandbox/requests    [?vendor=] every recorded request, oldest first
    GET    /_sandbox/duplicates  {"count": n, "duplicates": [{idempotency_key, method, path, times}]}
    GET    /_sandbox/state       every vendor's data
    POST   /_sandbox/reset       forget everything -> 204
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from sandbox import infinity, personaclick, salesmachine, segmetrics
from sandbox.common import Locked, json_response
from sandbox.records import VENDORS, Fault, RecordedRequest
from sandbox.state import SandboxState

CONTROL_PREFIX = "/_sandbox"

_ERROR_PAYLOADS = {
    "segmetrics": segmetrics.error_payload,
    "salesmachine": salesmachine.error_payload,
    "personaclick": personaclick.error_payload,
    "infinity": infinity.error_payload,
}


class SandboxApp(Starlette):
    """Starlette, plus recording and fault injection around every vendor request."""

    def __init__(self, state: SandboxState, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self.sandbox = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await super().__call__(scope, receive, send)
            return
        state = self.sandbox
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        vendor = path.strip("/").split("/", 1)[0]
        method: str = scope["method"]
        record = state.record(
            RecordedRequest(
                vendor=vendor if vendor in VENDORS else "unknown",
                method=method,
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                body=body.decode("utf-8", errors="replace"),
                idempotency_key=headers.get("idempotency-key"),
                headers=headers,
            )
        )
        latency, fault = state.take_faults(vendor, method, path)

        delay = sum(f.delay or 0.0 for f in (latency, fault) if f is not None)
        if delay:
            if await _client_left_within(receive, delay):
                state.set_status(record, None, "delay")
                return
            if fault is None:
                state.set_status(record, None, "delay")  # then served normally below
        if fault is not None and fault.drop and fault.drop != "after":
            state.set_status(record, None, "drop")
            await _drop(receive, send)
            return
        if fault is not None and fault.drop == "after":
            # the emulator does the work, then the answer is lost with the connection
            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state.set_status(record, message["status"], "drop-after")

            await super().__call__(scope, _replay(body, receive), swallow)
            await _drop(receive, send)
            return
        if fault is not None:
            await _fault_response(state, record, fault, vendor)(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.set_status(record, message["status"])  # before the client can see the answer
            await send(message)

        await super().__call__(scope, _replay(body, receive), recording_send)


def _fault_response(state: SandboxState, record: RecordedRequest, fault: Fault, vendor: str) -> Response:
    if fault.body is not None:
        content: bytes = fault.body.encode()
        media = fault.content_type or "application/json"
    else:
        make = _ERROR_PAYLOADS.get(vendor)
        content = make(fault.status, f"sandbox fault: {fault.status}") if make else b""
        media = fault.content_type or "application/json"
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
    state.set_status(record, fault.status, "status")
    return Response(content, status_code=fault.status, media_type=media, headers=headers)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`, or less if the client hangs up first; True when it did."""
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    done, _ = await asyncio.wait({watcher}, timeout=seconds)
    if done:
        return True
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return False


async def _drop(receive: Receive, send: Send) -> None:
    """Close the connection without a response. Under uvicorn `send` is a method of the request cycle,
    which holds the transport; elsewhere (an in-process transport) the request fails with an exception."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox: connection dropped by an injected fault")
    transport.close()
    await _wait_disconnect(receive)  # returns once the server has seen the connection go


# -- control API ----------------------------------------------------------------------------------------


FAULT_FIELDS = {
    "vendor", "status", "times", "path_contains", "method", "retry_after", "delay", "drop", "body", "content_type",
    "probability", "seed",
}


def control_routes(state: SandboxState) -> list[BaseRoute]:
    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_faults()
            return Response(status_code=204)
        try:
            spec: Any = await request.json()
        except ValueError:
            return json_response({"error": "the body must be JSON"}, 400)
        if not isinstance(spec, dict) or "vendor" not in spec or set(spec) - FAULT_FIELDS:
            return json_response({"error": f"a fault is an object with vendor and any of {sorted(FAULT_FIELDS)}"}, 400)
        try:
            fault = state.inject(**spec)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"fault": fault.public()}, 201)

    async def requests(request: Request) -> Response:
        vendor = request.query_params.get("vendor")
        return json_response([r.as_dict() for r in state.requests_for(vendor)])

    async def duplicates(request: Request) -> Response:
        found = state.duplicates()
        return json_response(
            {
                "count": state.duplicate_count(),
                "duplicates": [
                    {"idempotency_key": key, "method": method, "path": path, "times": n}
                    for (key, method, path), n in found.items()
                ],
            }
        )

    async def snapshot(request: Request) -> Response:
        return json_response(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    return [
        Route("/faults", faults, methods=["POST", "DELETE"]),
        Route("/requests", requests, methods=["GET"]),
        Route("/duplicates", duplicates, methods=["GET"]),
        Route("/state", snapshot, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
    ]


def create_sandbox_app(state: SandboxState | None = None) -> SandboxApp:
    """The sandbox: `/segmetrics/api/v1/{account_id}/{integration_id}/...`, `/salesmachine/v1|v2/...`,
    `/personaclick/...`, `/infinity/config/v2/igrps/{igrp}/...`, and the control API under `/_sandbox/`."""
    state = state if state is not None else SandboxState()
    creds = state.credentials
    routes: list[BaseRoute] = [
        Mount(CONTROL_PREFIX, routes=control_routes(state)),
        Mount("/segmetrics", routes=segmetrics.routes(creds, Locked(state.lock, lambda: state.segmetrics))),
        Mount("/salesmachine", routes=salesmachine.routes(creds, Locked(state.lock, lambda: state.salesmachine))),
        Mount("/personaclick", routes=personaclick.routes(creds, Locked(state.lock, lambda: state.personaclick))),
        Mount("/infinity", routes=infinity.routes(creds, Locked(state.lock, lambda: state.infinity))),
    ]
    return SandboxApp(state, routes)
