"""The vendor sandbox: faithful local emulators of SegMetrics, Salesmachine, PersonaClick and Infinity,
served by one Starlette app, for the tests, the benchmarks and the one-command demo. A package of its own:
the vendor clients (`handlers/`) never import it.

    python -m sandbox --host 127.0.0.1 --port 8090

`create_sandbox_app(state)` builds the app; `SandboxState` holds the vendors' data, records every request
and queues faults (`state.inject("segmetrics", status=503, times=2)`); `sandbox_vendor_tables(url)` gives
the `[vendors.*]` config tables that point sluice at a running sandbox.
"""

from sandbox.app import create_sandbox_app
from sandbox.config import sandbox_vendor_tables
from sandbox.credentials import SandboxCredentials
from sandbox.records import Fault, RecordedRequest
from sandbox.state import SandboxState

__all__ = [
    "Fault",
    "RecordedRequest",
    "SandboxCredentials",
    "SandboxState",
    "create_sandbox_app",
    "sandbox_vendor_tables",
]
