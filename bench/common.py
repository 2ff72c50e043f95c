"""Shared machinery of the benchmarks: a private Redis, processes pinned to cores, pre-signed requests, wrk and
a small asyncio load generator, /proc readings, and the table printer.

Everything runs on loopback. The servers under test are pinned to core 0 (`SERVER_CPUS`), the load generator
and Redis to core 1 (`LOAD_CPUS`), so the generator never competes with the server it measures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.samples import numbered_contact, sample_event  # noqa: E402
from cli.signing import sign_headers  # noqa: E402
from config.toml import write as write_config  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCE = "bench"
NCPU = os.cpu_count() or 1
SERVER_CPUS = "0"
LOAD_CPUS = "1" if NCPU > 1 else "0"
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # as the Procfile's web:


def pinned(cpus: str, cmd: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if shutil.which("taskset") and NCPU > 1 else list(cmd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Workdir:
    """A temporary directory for configs, logs and request files, removed at the end unless BENCH_KEEP=1."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sluice-bench-"))

    def cleanup(self) -> None:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(self.path, ignore_errors=True)


class Proc:
    """A child process with its log in the workdir; stopped with SIGTERM (then SIGKILL) by its own pid."""

    def __init__(self, name: str, cmd: Sequence[str], workdir: Workdir, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.name = name
        self.log_path = workdir.path / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **(env or {})}
        full_env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen(list(cmd), cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = port
        if port is not None:
            wait_port(port, proc=self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def start_redis(workdir: Workdir, replica_of: int | None = None) -> tuple[Proc, str]:
    """A private redis-server without persistence (the same for every variant measured); a replica of the one at
    port `replica_of` when given."""
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    cmd = pinned(LOAD_CPUS, [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(workdir.path), "--daemonize", "no", "--repl-diskless-sync-delay", "0",
                             *(["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else [])])
    return Proc("redis", cmd, workdir, port=port), f"redis://127.0.0.1:{port}/0"


def uvicorn(name: str, factory: str, config: Path, workdir: Workdir, cpus: str = SERVER_CPUS) -> Proc:
    port = free_port()
    cmd = pinned(cpus, [str(VENV_BIN / "uvicorn"), "--factory", factory, "--host", "127.0.0.1", "--port",
                        str(port), *UVICORN_FLAGS])
    return Proc(name, cmd, workdir, env={"SLUICE_CONFIG": str(config)}, port=port)


def bench_config(workdir: Workdir, redis_url: str, *, vendors: dict[str, Any] | None = None,
                 name: str = "sluice.toml", **extra: Any) -> Path:
    data: dict[str, Any] = {
        "redis_url": redis_url,
        "namespace": "bench",
        # long, so that requests signed at the start of a run are still in tolerance at its end
        "ingress": {"tolerance_seconds": 3600},
        "sources": {SOURCE: {"scheme": "standard-webhooks", "secrets": [SECRET]}},
        **extra,
    }
    if vendors is not None:
        data["vendors"] = vendors
    return write_config(workdir.path / name, data)


# -- requests ---------------------------------------------------------------------------------------------


def signed_request(port: int, event_id: str, now: float, event_type: str = "purchase",
                   person: int | None = None) -> bytes:
    """One raw HTTP/1.1 request: a sample event with a valid Standard Webhooks signature (about the n-th person
    when `person` is given: one contact's calls go one at a time per vendor, SPEC rule 8)."""
    event = sample_event(event_type, now, event_id)
    if person is not None:
        event["contact"] = numbered_contact(person)
    body = orjson.dumps(event)
    headers = sign_headers("standard-webhooks", SECRET, body, now, msg_id=f"msg_{event_id}")
    head = [f"POST /webhooks/{SOURCE} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def request_file(path: Path, port: int, prefix: str, count: int, event_type: str = "purchase") -> Path:
    """`count` distinct signed requests, length-prefixed (`<len>\\n<bytes>`), for bench/requests.lua."""
    now = time.time()
    with open(path, "wb") as fh:
        for i in range(count):
            raw = signed_request(port, f"{prefix}_{i}", now, event_type)
            fh.write(b"%d\n" % len(raw))
            fh.write(raw)
    return path


# -- wrk ----------------------------------------------------------------------------------------------------


def run_wrk(port: int, requests: Path, seconds: float, connections: int = 64) -> dict[str, float]:
    """wrk (one thread, pinned to the load core) replaying `requests`; accepted = answers with status 202."""
    cmd = pinned(LOAD_CPUS, ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                             "-s", str(ROOT / "bench" / "requests.lua"), f"http://127.0.0.1:{port}/",
                             "--", str(requests)])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    data = orjson.loads(line[5:])
    secs = data["duration_us"] / 1e6
    return {"rps": data["accepted"] / secs, "requests": data["requests"], "accepted": data["accepted"],
            "other": data["other"], "errors": data["errors"], "p50_ms": data["p50_us"] / 1000,
            "p99_ms": data["p99_us"] / 1000, "seconds": secs}


# -- asyncio load generator ---------------------------------------------------------------------------------


async def _post_all(port: int, requests: Sequence[bytes], connections: int, rate: float | None,
                    sent: list[float], done: list[float], status: list[int]) -> None:
    """Send every request over `connections` keep-alive connections: as fast as answers come back, or (with
    `rate`) each at its own slot of an open-loop schedule. Times are time.time() (comparable across processes)."""
    next_index = 0
    start = time.time() + 0.05

    async def conn() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests):
                i = next_index
                next_index += 1
                if rate is not None:
                    wait = start + i / rate - time.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                sent[i] = time.time()
                writer.write(requests[i])
                head = await reader.readuntil(b"\r\n\r\n")
                status[i] = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                done[i] = time.time()
        finally:
            writer.close()

    await asyncio.gather(*(conn() for _ in range(min(connections, len(requests)))))


def post_all(port: int, requests: Sequence[bytes], connections: int = 64,
             rate: float | None = None) -> tuple[list[float], list[float], list[int]]:
    """(send times, answer times, statuses) of every request, in order."""
    sent = [0.0] * len(requests)
    done = [0.0] * len(requests)
    status = [0] * len(requests)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(_post_all(port, requests, connections, rate, sent, done, status))
    return sent, done, status


def pin_self(cpus: str) -> None:
    if NCPU > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


# -- /proc ---------------------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    """The process and its children (taskset execs in place, so usually just the process)."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out.extend(descendants(int(child)))
    return out


# -- statistics and output ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Iterable[float]) -> float:
    return percentile(list(values), 50)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    cells = [list(headers)] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def figures(**values: float | int | str) -> str:
    """The last line of every benchmark: name=value pairs."""
    parts = []
    for k, v in values.items():
        parts.append(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


def say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)
