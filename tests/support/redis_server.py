"""A private redis-server on a free port, for tests that need persistence, a restart or a fault, and for
machines where no Redis answers at all."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from store.connection import redis_answers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


answers = redis_answers


class RedisServer:
    """`with RedisServer(appendonly=True) as srv:` starts redis-server; `srv.restart()` keeps its data dir."""

    def __init__(self, *, appendonly: bool = False, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
        self.binary = binary
        self.appendonly = appendonly
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
            "--daemonize", "no", "--logfile", str(self.dir / "redis.log"),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_until(answers_now=True)

    def wait_until(self, *, answers_now: bool, timeout: float = 10.0) -> None:
        """Poll (bounded) until the server answers, or stops answering."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers(self.url) == answers_now:
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not {'start' if answers_now else 'stop'}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP), as a managed Redis freezes during a fail-over: connections stay open,
        nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)
