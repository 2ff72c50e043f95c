"""The vendor sandbox (the `sandbox` package, unchanged) behind a thin ASGI wrapper that notes when each vendor
request arrived, for the end-to-end benchmark's "POST to last vendor call" latency.

    python bench/timed_sandbox.py --port N

    GET  /_bench/count   number of vendor requests received so far (cheap to poll)
    GET  /_bench/times   [[idempotency_key, unix_time], ...] in arrival order
    POST /_bench/reset   forget the times, and the sandbox's own records and data (memory stays flat)

Served by uvicorn with uvloop and httptools, so that the emulators take as little of the machine's two cores
from the system under test as they can; no latency is added.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.app import create_sandbox_app  # noqa: E402


def create_app():  # type: ignore[no-untyped-def]
    sandbox = create_sandbox_app()
    times: list[tuple[str | None, float]] = []

    async def reply(send, body: bytes, status: int = 200) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await sandbox(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/_bench/"):
            if path == "/_bench/count":
                await reply(send, b"%d" % len(times))
            elif path == "/_bench/times":
                await reply(send, orjson.dumps(times))
            elif path == "/_bench/reset":
                times.clear()
                sandbox.sandbox.reset()
                await reply(send, b"{}")
            else:
                await reply(send, b"{}", 404)
            return
        if not path.startswith("/_sandbox"):
            key = None
            for name, value in scope["headers"]:
                if name == b"idempotency-key":
                    key = value.decode("latin-1")
                    break
            times.append((key, time.time()))
        await sandbox(scope, receive, send)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                lifespan="off", loop="uvloop", http="httptools", ws="none")


if __name__ == "__main__":
    main()
