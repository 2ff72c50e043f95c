"""The vendor sandbox served over real HTTP on loopback, for tests.

    with SandboxServer() as sandbox:
        sandbox.url          # http://127.0.0.1:<free port>
        sandbox.state        # SandboxState: inject faults, read requests and vendor data
        sandbox.vendor_tables()   # the [vendors.*] tables pointing at it

The `sandbox` fixture (import it into a conftest) gives each test one server for the whole session with a
freshly reset state.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from sandbox import SandboxState, create_sandbox_app, sandbox_vendor_tables


class SandboxServer:
    """uvicorn serving the sandbox app on 127.0.0.1 in a background thread."""

    def __init__(self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state if state is not None else SandboxState()
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def vendor_tables(self) -> dict[str, Any]:
        return sandbox_vendor_tables(self.url, self.state.credentials)

    def start(self, timeout: float = 10.0) -> SandboxServer:
        # proto must be IPPROTO_TCP for asyncio to set TCP_NODELAY on accepted connections (else Nagle and
        # delayed ACKs add ~40 ms to every request)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            create_sandbox_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:  # bounded poll for startup
            if not self._thread.is_alive():
                raise RuntimeError("the sandbox server thread died during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start within {timeout}s")
            self._thread.join(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_SERVER = pytest.StashKey[SandboxServer]()


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """The session's sandbox server (started on first use, stopped at the end), its state reset for this
    test. Self-contained: importing this one name into a conftest is enough."""
    server = request.config.stash.get(_SERVER, None)
    if server is None:
        server = SandboxServer().start()
        request.config.stash[_SERVER] = server
        request.config.add_cleanup(server.stop)
    server.state.reset()
    yield server
    server.state.clear_faults()
