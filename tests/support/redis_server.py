"""A private redis-server on a free port, for tests that need persistence, a restart or a fault, and for
machines where no Redis answers at all."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from store.connection import redis_answers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


answers = redis_answers


class RedisServer:
    """`with RedisServer(appendonly=True) as srv:` starts redis-server; `srv.restart()` keeps its data dir."""

    def __init__(self, *, appendonly: bool = False, port: int | None = None, replica_of: int | None = None,
                 args: Sequence[str] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
        self.binary = binary
        self.appendonly = appendonly
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.replica_of = replica_of
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
            "--daemonize", "no", "--logfile", str(self.dir / "redis.log"), "--repl-diskless-sync-delay", "0",
            *self.args,
        ]
        if self.replica_of is not None:
            cmd += ["--replicaof", "127.0.0.1", str(self.replica_of)]
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


class TLSRedisServer(RedisServer):
    """redis-server on a TLS port only (`--port 0`), certificates from `trustme`, clients not asked for theirs.
    `users` are ACL lines (`user app on >p@ss/w:rd ~* &* +@all`); the default user may only PING."""

    def __init__(self, *, users: Sequence[str] = ()) -> None:
        import trustme

        super().__init__()
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.dir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        acl = self.dir / "users.acl"
        # the default user may only PING (the start-up check): everything else must log in as one of `users`
        acl.write_text("".join(f"{line}\n" for line in ["user default on nopass -@all +ping", *users]))
        self.args = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.dir / "cert.pem"),
                     "--tls-key-file", str(self.dir / "key.pem"), "--tls-ca-cert-file", str(self.ca_file),
                     "--tls-auth-clients", "no", "--aclfile", str(acl)]

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"


class SentinelServer(RedisServer):
    """`redis-server --sentinel` watching the primary at `primary_port` as `master`, quick to decide."""

    def __init__(self, primary_port: int, *, master: str = "sluice", down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000) -> None:
        super().__init__()
        self.master = master
        conf = self.dir / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {master} 127.0.0.1 {primary_port} 2\n"
                        f"sentinel down-after-milliseconds {master} {down_after_ms}\n"
                        f"sentinel failover-timeout {master} {failover_timeout_ms}\n"
                        f"sentinel parallel-syncs {master} 1\n")
        self.conf = conf

    def start(self) -> None:
        cmd = [self.binary, str(self.conf), "--sentinel", "--logfile", str(self.dir / "sentinel.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_until(answers_now=True)

    def primary_port(self) -> int | None:
        """The port of the primary this sentinel names now (None while it names none)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()
        return int(addr[1]) if addr else None
