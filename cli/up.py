"""`python3 dev.py up`: the whole system on one machine, for a newcomer.

Uses the Redis of SLUICE_CONFIG (its redis_url and [redis], read as web and worker read them) or else at
REDIS_URL (or 127.0.0.1:6379) when one answers, else starts a private redis-server
(installing it with apt-get when run as root, else saying what to install). With no SLUICE_CONFIG it writes
a demo config whose vendors are the built-in sandbox (local emulators of the four vendors), then runs the
sandbox, the ingress (`web:` of the Procfile) and one worker until Ctrl-C. `--smoke` sends one signed event
through the running system, waits (bounded) until every call of it is final, prints the result and stops:
the README's first command, checked end to end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import config.toml
from config.settings import load_or_exit
from store.connection import answers_now, redis_answers, where

ROOT = Path(__file__).resolve().parent.parent
DEMO_SECRET = "whsec_c2x1aWNlLWRlbW8tc2VjcmV0LWxvY2FsLW9ubHkhIQ=="
DEMO_STRIPE_SECRET = "demo-stripe-secret"
DEMO_ADMIN_TOKEN = "demo-admin-token"


def say(message: str) -> None:
    print(f"sluice up: {message}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def find_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary:
        return binary
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("redis-server is missing; installing it with apt-get")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False)
        binary = shutil.which("redis-server")
        if binary:
            return binary
    sys.exit("sluice up: no Redis answers and redis-server is not installed. Install it "
             "(Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), "
             "or set REDIS_URL to a running Redis.")


def wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    sys.exit(f"sluice up: {what} did not come up within {timeout:.0f} s")


def demo_config(redis_url: str, sandbox_url: str) -> str:
    from sandbox.config import sandbox_vendor_tables

    return config.toml.dumps({
        "redis_url": redis_url,
        "ingress": {"admin_token": DEMO_ADMIN_TOKEN},
        "sources": {
            "demo": {"scheme": "standard-webhooks", "secrets": [DEMO_SECRET]},
            "demo-stripe": {"scheme": "stripe", "secrets": [DEMO_STRIPE_SECRET]},
        },
        "delivery": {"timeout_seconds": 5, "schedule_seconds": [1, 5, 30, 120]},
        "vendors": sandbox_vendor_tables(sandbox_url),
    })


class Fleet:
    """The child processes, stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path | None = None) -> None:
        out = open(log, "ab") if log else None  # noqa: SIM115 - lives as long as the child
        self.procs.append((name, subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
                                                  if out else None)))

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                self.stop()
                sys.exit(f"sluice up: {name} exited with status {proc.returncode}; see its log")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--sandbox-port", type=int, default=8090)
    parser.add_argument("--smoke", action="store_true", help="send one event, wait for delivery, stop")
    parser.add_argument("--state", type=Path, default=ROOT / ".sluice", help="where config, logs and data go")
    args = parser.parse_args(argv)
    state = args.state
    state.mkdir(parents=True, exist_ok=True)
    fleet = Fleet()
    env = dict(os.environ)
    py = sys.executable

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    configured = load_or_exit() if env.get("SLUICE_CONFIG") and not env.get("REDIS_URL") else None
    own = configured is not None and answers_now(configured)  # reached as web and worker will: Sentinel, TLS
    if own:
        assert configured is not None
        say(f"using the Redis of {env['SLUICE_CONFIG']}: {where(configured)}")
    elif redis_answers(redis_url):
        say(f"using the Redis at {redis_url}")
    else:
        port = next(p for p in range(6390, 6490) if port_free(p))
        redis_url = f"redis://127.0.0.1:{port}/0"
        (state / "redis").mkdir(exist_ok=True)
        fleet.start("redis-server", [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                     "--dir", str(state / "redis"), "--appendonly", "yes", "--save", ""],
                    env, state / "redis.log")
        wait_for(lambda: redis_answers(redis_url), "redis-server")
        say(f"started a private redis-server at {redis_url} (data in {state / 'redis'})")
    if not own:
        env["REDIS_URL"] = redis_url

    if env.get("SLUICE_CONFIG"):
        say(f"using the config at {env['SLUICE_CONFIG']}")
    else:
        sandbox_url = f"http://127.0.0.1:{args.sandbox_port}"
        config = state / "sluice.toml"
        config.write_text(demo_config(redis_url, sandbox_url))
        env["SLUICE_CONFIG"] = str(config)
        fleet.start("sandbox", [py, "-m", "sandbox", "--host", "127.0.0.1", "--port",
                                str(args.sandbox_port)], env, state / "sandbox.log")
        wait_for(lambda: _http_ok(f"{sandbox_url}/_sandbox/state"), "the vendor sandbox")
        say(f"no vendor credentials configured: vendors are the built-in sandbox at {sandbox_url} "
            f"(requests: {sandbox_url}/_sandbox/requests)")

    base = f"http://127.0.0.1:{args.port}"
    fleet.start("web", [py, "-m", "uvicorn", "--factory", "ingress.app:create_app", "--host", "0.0.0.0",
                        "--port", str(args.port), "--no-access-log"], env,
                state / "web.log" if args.smoke else None)
    fleet.start("worker", [py, "-m", "worker"], env, state / "worker.log" if args.smoke else None)
    wait_for(lambda: _http_ok(f"{base}/readyz"), "the ingress")
    say(f"ingress ready at {base}  (health {base}/healthz, metrics {base}/metrics, API {base}/openapi.json)")
    say(f"operator console at {base}/console/ (log in with the admin token; without one there is no console)")
    say(f"config {env['SLUICE_CONFIG']}; admin token: see [ingress].admin_token there")
    say("try: .venv/bin/sluice send signup --source demo   then   .venv/bin/sluice events show demo <id>")
    try:
        if args.smoke:
            return smoke(base, env)
        while True:
            fleet.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        say("stopping")
        fleet.stop()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def smoke(base: str, env: dict[str, str]) -> int:
    """Send a signed signup, then poll (bounded) `sluice events show` until every call is final."""
    import orjson

    event_id = f"evt_smoke_{int(time.time() * 1000)}"
    sluice = [sys.executable, "-m", "cli"]
    sent = subprocess.run([*sluice, "send", "signup", "--source", "demo", "--url", base, "--id", event_id],
                          env=env, capture_output=True, text=True, check=False)
    print(sent.stdout.strip() or sent.stderr.strip(), flush=True)
    if sent.returncode != 0:
        return 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = subprocess.run([*sluice, "events", "show", "demo", event_id, "--json"], env=env,
                               capture_output=True, text=True, check=False)
        if shown.returncode == 0:
            calls = orjson.loads(shown.stdout)["calls"]
            if calls and all(c["status"] in ("succeeded", "skipped", "dead") for c in calls):
                for c in calls:
                    print(f"  {c['vendor']}.{c['operation']}: {c['status']}", flush=True)
                return 0 if all(c["status"] == "succeeded" for c in calls) else 1
        time.sleep(0.2)
    say("the event was not delivered within 30 s")
    return 1


if __name__ == "__main__":
    sys.exit(main())
