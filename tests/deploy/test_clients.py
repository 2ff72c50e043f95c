"""Every process reads `redis_url` and `[redis]` alike (SPEC section 2): the same connection settings for web,
worker and CLI; a TLS Redis with an ACL user used end to end; a Redis Cluster refused at start-up; the new
config keys' errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from cli.main import cli_redis
from cli.samples import sample_event
from config.settings import Settings, settings_from_mapping
from core.errors import ConfigError
from ingress.app import create_app, ingress_redis
from store.connection import SentinelPrimaryPool
from tests.conftest import base_config
from tests.ingress.conftest import serve, standard_headers
from tests.support.fleet import ROOT, wait_until, write_config
from tests.support.redis_server import RedisServer, TLSRedisServer, free_port
from tests.support.sandbox import SandboxServer
from tests.support.worker import run_burst
from worker.app import build_deps, worker_settings

PARITY_URL = "rediss://app:p%40ss%2Fw@host:6380/2?ssl_cert_reqs=none"
SAME = ("host", "port", "db", "username", "password", "ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname")
runner = CliRunner()


def what_it_connects_with(client: Any) -> tuple[type, dict[str, Any]]:
    pool = client.connection_pool
    return pool.connection_class, {k: pool.connection_kwargs.get(k) for k in SAME}


@pytest.mark.parametrize("sentinels", [False, True])
async def test_web_worker_and_cli_read_the_url_alike(sentinels: bool) -> None:
    """The ingress's, the worker's (its own client and arq's pool) and the CLI's clients get identical connection
    settings from one URL: the password percent-decoded, TLS with ssl_cert_reqs as given; through Sentinel too,
    where only host and port come from the sentinels."""
    table = {"sentinels": ["127.0.0.1:26379", "127.0.0.1:26380"], "sentinel_master": "main"} if sentinels else {}
    settings = settings_from_mapping({"redis_url": PARITY_URL, "redis": table}, {})
    deps = await build_deps(settings, vendors=object())
    arq_pool = worker_settings(settings)["redis_pool"]
    clients = [ingress_redis(settings), deps.redis, arq_pool, cli_redis(settings)]
    try:
        seen = [what_it_connects_with(c) for c in clients]
        assert all(s == seen[0] for s in seen), seen
        cls, kwargs = seen[0]
        expected = {"host": None, "port": None} if sentinels else {"host": "host", "port": 6380}
        assert kwargs == {**dict.fromkeys(SAME), **expected, "db": 2, "username": "app", "password": "p@ss/w",
                          "ssl_cert_reqs": "none"}
        assert "SSL" in cls.__name__
        assert all(isinstance(c.connection_pool, SentinelPrimaryPool) == sentinels for c in clients)
    finally:
        for client in (clients[0], clients[2], clients[3]):
            await client.aclose()
        await deps.aclose()


@pytest.mark.parametrize(("table", "problem"), [
    ({"sentinels": ["10.0.0.5:26379", "10.0.0.6"], "sentinel_master": "m"},
     'redis.sentinels[1]: \'10.0.0.6\' is not "host:port"'),
    ({"sentinels": ["10.0.0.5:0"], "sentinel_master": "m"}, "redis.sentinels[0]: '10.0.0.5:0' is not"),
    ({"sentinels": ["10.0.0.5:26379"]}, "redis.sentinel_master: required when sentinels are given"),
    ({"sentinel_master": "m"}, "redis.sentinel_master: given without sentinels"),
    ({"replicas_ack": -1}, "redis.replicas_ack: Input should be greater than or equal to 0"),
    ({"replicas_ack": "one"}, "redis.replicas_ack: Input should be a valid integer"),
    ({"replicas_ack_timeout_ms": 0}, "redis.replicas_ack_timeout_ms: Input should be greater than 0"),
    ({"sentinel": []}, "redis.sentinel: unknown key"),
])
def test_a_bad_redis_table_names_the_key(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"redis": table}, {})
    assert str(caught.value).startswith(problem), caught.value


def test_sentinels_need_a_tcp_url_and_default_to_nothing_new() -> None:
    """Nothing changes for a plain redis:// user: no sentinels, no replica acknowledgement."""
    plain = settings_from_mapping({}, {}).redis
    assert (plain.sentinels, plain.sentinel_master) == ((), None)
    assert (plain.replicas_ack, plain.replicas_ack_timeout_ms) == (0, 500)
    with pytest.raises(ConfigError, match="unix://"):
        settings_from_mapping({"redis_url": "unix:///run/redis.sock",
                               "redis": {"sentinels": ["h:1"], "sentinel_master": "m"}}, {})


def cli(config: Path, *args: str) -> Any:
    return runner.invoke(cli_app, list(args), env={"SLUICE_CONFIG": str(config), "REDIS_URL": ""})


@pytest.mark.parametrize("verify", ["ssl_cert_reqs=none", "ssl_cert_reqs=required&ssl_ca_certs={ca}"])
def test_a_tls_redis_with_an_acl_user_serves_web_worker_and_cli(verify: str, tmp_path: Path,
                                                                 sandbox: SandboxServer) -> None:
    """rediss:// with a user whose password needs percent-encoding: an event posted to the ingress, delivered
    by a worker to the vendor sandbox, seen with `sluice events show`, every client over TLS."""
    password = "p@ss/w:rd"
    with TLSRedisServer(users=[f"user app on >{password} ~* &* +@all"]) as server:
        query = verify.format(ca=server.ca_file)
        url = f"rediss://app:{quote(password, safe='')}@127.0.0.1:{server.port}/0?{query}"
        data = {**base_config(url, "tls"), "vendors": sandbox.vendor_tables(),
                "routes": {"signup": ["segmetrics.upsert_contact"]}}
        settings = settings_from_mapping(data, {})
        config = write_config(tmp_path / "sluice.toml", data)
        event = sample_event("signup", time.time(), "evt_tls_1")

        async def post_and_deliver() -> int:
            body = orjson.dumps(event)
            headers = {"content-type": "application/json", **standard_headers(body, time.time(), msg_id="m1")}
            async with serve(create_app(settings)) as http:
                status = (await http.post("/webhooks/shopfront", content=body, headers=headers)).status_code
            await run_burst(settings)
            return status

        assert asyncio.run(post_and_deliver()) == 202
        shown = cli(config, "events", "show", "shopfront", "evt_tls_1", "--json")
        assert shown.exit_code == 0, shown.output
        calls = orjson.loads(shown.stdout)["calls"]
        assert [(c["vendor"], c["operation"], c["status"]) for c in calls] == [
            ("segmetrics", "upsert_contact", "succeeded")]
        assert [r.status for r in sandbox.state.requests_for("segmetrics")] == [200]

        untrusted = write_config(tmp_path / "untrusted.toml", {**data, "redis_url": url.split("?")[0]})
        refused = cli(untrusted, "events", "show", "shopfront", "evt_tls_1")
        assert refused.exit_code == 1 and "cannot reach Redis" in refused.stderr  # the CA must be trusted


def test_a_redis_cluster_node_is_refused_at_start_up(tmp_path: Path) -> None:
    """Web, worker and CLI each stop with one line naming redis_url and exit status 2 (as for a config error)."""
    port = next(p for p in iter(free_port, 0) if p + 10_000 < 65_536)  # the cluster bus listens 10000 higher
    with RedisServer(port=port, args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]) as server:
        config = write_config(tmp_path / "sluice.toml", base_config(server.url, "cluster"))
        env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "SLUICE_CONFIG": str(config)}
        procs = {
            "web": subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "ingress.app:create_app",
                                     "--port", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True),
            "worker": subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True),
        }
        shown = cli(config, "dlq", "list")
        outcomes = {name: (proc.wait(timeout=60), proc.communicate()[1]) for name, proc in procs.items()}
        outcomes["cli"] = (shown.exit_code, shown.stderr)
    for name, (status, stderr) in outcomes.items():
        lines = stderr.strip().splitlines()
        assert status == 2, (name, stderr)
        assert lines == [f"sluice: config error: redis_url: the Redis at redis://127.0.0.1:{server.port}/0 runs in "
                         "cluster mode (cluster_enabled:1); Redis Cluster is not supported: use one primary (with "
                         "replicas, Sentinel)"], (name, stderr)


def test_settings_default_is_unchanged_for_plain_redis(settings: Settings) -> None:
    """The shared test config (plain redis://) builds plain pools, no Sentinel, no WAIT."""
    from ingress.app import replicas_acknowledged

    assert replicas_acknowledged(settings).keywords["wait_replicas"] is None  # type: ignore[attr-defined]
    assert not isinstance(ingress_redis(settings).connection_pool, SentinelPrimaryPool)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_dev_up_uses_the_configs_redis_as_web_and_worker_do(tmp_path: Path, sandbox: SandboxServer) -> None:
    """`dev.py up` with a SLUICE_CONFIG whose Redis is TLS with an ACL user: it checks that Redis through the same
    clients (not REDIS_URL or 127.0.0.1:6379), and web and worker come up on it (/readyz answers 200)."""
    import httpx

    password = "p@ss/w:rd"
    with TLSRedisServer(users=[f"user app on >{password} ~* &* +@all"]) as server:
        url = f"rediss://app:{quote(password, safe='')}@127.0.0.1:{server.port}/0?ssl_cert_reqs=none"
        config = write_config(tmp_path / "sluice.toml", {**base_config(url, "up"), "vendors": sandbox.vendor_tables()})
        env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "SLUICE_CONFIG": str(config)}
        port = free_port()
        log = tmp_path / "up.log"
        with open(log, "wb") as out_file:
            up = subprocess.Popen([sys.executable, "-m", "cli.up", "--port", str(port), "--state",
                                   str(tmp_path / "state")], cwd=ROOT, env=env, stdout=out_file,
                                  stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:  # up's own readiness line: only then does Ctrl-C stop what it started
            assert up.poll() is None, log.read_text()
            return "ingress ready at" in log.read_text()

        try:
            wait_until(ready, 60, 0.1, "dev.py up to start the ingress", logs=[log])
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=60) == 0
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait(timeout=10)
        out = log.read_text()
    assert f"using the Redis of {config}: 127.0.0.1:{server.port}/0?ssl_cert_reqs=none" in out, out
    assert "private redis-server" not in out
