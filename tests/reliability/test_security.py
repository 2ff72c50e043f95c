"""Security: signatures compared in constant time, replays outside the tolerance refused, the admin API
refusing missing, wrong and empty tokens, and no configured secret in anything the system produced during a
run through every path (logs of the ingress and worker processes, /metrics, dead letters, error bodies,
every value sluice wrote to Redis)."""

from __future__ import annotations

import ast
import base64
import hmac
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from cli.samples import sample_event as cli_sample_event
from config.settings import Settings, settings_from_mapping
from core.clock import FrozenClock
from core.routing import DEFAULT_ROUTES
from core.signatures import build_verifier
from core.errors import VerificationError
from ingress.app import create_app
from store.keys import Keys
from tests.conftest import SECRET, base_config
from tests.ingress.conftest import SIGNERS, dumps, sample_event, serve, signed, standard_headers
from tests.reliability.support import IngressProcess, figures
from tests.support.fleet import SandboxProcess, WorkerProcess, unfinished, wait_until, write_config

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-token-s3cret"

# -- constant time -------------------------------------------------------------------------------------------

SCHEMES = {"standard-webhooks": ([SECRET], "shopfront"), "stripe": (["stripe-secret-one"], "stripey"),
           "shopify": (["shopify-secret-one"], "shopify")}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_signature_check_goes_through_compare_digest(scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Good, wrong-first-byte and wrong-last-byte signatures are all decided by hmac.compare_digest, against
    every configured secret (no early exit when one matches)."""
    secrets, source = SCHEMES[scheme]
    verifier = build_verifier(scheme, [*secrets, "rotated-out-" + secrets[0]], 300, key="k")
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = dumps(sample_event())
    now = 1_795_000_000.0
    good = {k.lower(): v for k, v in signed(source, body, now).items()}
    assert verifier.verify(good, body, now) is None
    assert len(calls) == 2  # one per secret, although the first one matched
    for flip in (0, -1):
        calls.clear()
        with pytest.raises(VerificationError):
            verifier.verify(good, body[:flip] + b"X" if flip else b"X" + body[1:], now)
        assert len(calls) == 2


def test_no_signature_or_token_compared_with_equals() -> None:
    """No `==`/`!=` in the verifier or the admin guard touches a signature, digest, MAC or token."""
    suspicious = []
    for path in (ROOT / "core" / "signatures.py", ROOT / "ingress" / "admin.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                text = ast.unparse(node).lower()
                if any(word in text for word in ("sig", "digest", "mac", "token", "secret", "authoriz")):
                    suspicious.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert suspicious == []


def test_verification_time_does_not_depend_on_where_the_signature_differs() -> None:
    """A wrong signature costs the same whether it differs in its first or its last byte (median of many
    interleaved runs; a coarse guard, the spy above is the proof)."""
    verifier = build_verifier("standard-webhooks", [SECRET], 300, key="k")
    body = dumps(sample_event())
    now = 1_795_000_000.0
    headers = standard_headers(body, now)
    good = base64.b64decode(headers["webhook-signature"].removeprefix("v1,"))
    variants = {}
    for where, index in (("first", 0), ("last", len(good) - 1)):
        wrong = bytearray(good)
        wrong[index] ^= 0xFF
        variants[where] = {**headers, "webhook-signature": "v1," + base64.b64encode(bytes(wrong)).decode()}
    times: dict[str, list[float]] = {"first": [], "last": []}
    for _ in range(3000):
        for where, h in variants.items():
            started = time.perf_counter_ns()
            try:
                verifier.verify(h, body, now)
            except VerificationError:
                pass
            times[where].append(time.perf_counter_ns() - started)
    first, last = statistics.median(times["first"]), statistics.median(times["last"])
    figures("constant_time", {"median_ns_first_byte_wrong": first, "median_ns_last_byte_wrong": last,
                              "ratio": round(last / first, 3)})
    assert 0.8 < last / first < 1.25


# -- replays -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(SIGNERS))
async def test_replay_outside_tolerance_refused(source: str, settings: Settings) -> None:
    """The very same signed request: 202, then 200 duplicate within the tolerance, then 401 once the clock
    is past it (and 401 for a timestamp as far in the future)."""
    clock = FrozenClock()
    body = dumps(sample_event(id=f"evt_replay_{source}"))
    signer = SIGNERS[source]
    headers = {"content-type": "application/json",
               **(signer(body, clock()) if source != "shopify" else signer(body, clock()))}  # shopify: Triggered-At
    tolerance = settings.ingress.tolerance_seconds
    async with serve(create_app(settings, clock=clock)) as client:
        first = await client.post(f"/webhooks/{source}", content=body, headers=headers)
        clock.advance(tolerance - 1)
        within = await client.post(f"/webhooks/{source}", content=body, headers=headers)
        clock.advance(2)
        outside = await client.post(f"/webhooks/{source}", content=body, headers=headers)
        clock.advance(-2 * tolerance - 2)  # now the signature's timestamp is tolerance + 1 s in the future
        future = await client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert [r.status_code for r in (first, within, outside, future)] == [202, 200, 401, 401]
    assert outside.json() == {"error": "invalid_signature"}


# -- admin tokens --------------------------------------------------------------------------------------------

ADMIN_ROUTES = [("GET", "/admin/events/shopfront/evt_1"), ("GET", "/admin/dead-letters"),
                ("GET", "/admin/dead-letters/dl_1"), ("POST", "/admin/dead-letters/dl_1/replay"),
                ("POST", "/admin/dead-letters/replay"), ("DELETE", "/admin/dead-letters/dl_1")]
BAD_AUTH: list[dict[str, str]] = [
    {}, {"authorization": ""}, {"authorization": "Bearer"}, {"authorization": "Bearer "},
    {"authorization": "Bearer wrong"}, {"authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"authorization": f"Bearer {ADMIN_TOKEN}x"}, {"authorization": f"Bearer  {ADMIN_TOKEN}"},
    {"authorization": f"Basic {ADMIN_TOKEN}"}, {"authorization": ADMIN_TOKEN},
    {"authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()},
    {"x-admin-token": ADMIN_TOKEN}, {"cookie": f"token={ADMIN_TOKEN}"},
]


async def test_admin_refuses_missing_wrong_and_empty_tokens(settings: Settings) -> None:
    """Every admin route answers 401 {"error": "unauthorized"} to every bad credential, and not 401 to the
    right one."""
    refused = 0
    async with serve(create_app(settings)) as client:
        for method, path in ADMIN_ROUTES:
            for headers in BAD_AUTH:
                r = await client.request(method, path, headers=headers)
                assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), (method, path, headers)
                assert ADMIN_TOKEN not in r.text
                refused += 1
            r = await client.request(method, path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
            assert r.status_code != 401
    figures("admin_auth", {"routes": len(ADMIN_ROUTES), "bad_credentials": len(BAD_AUTH), "refused": refused})


async def test_admin_without_a_token_configured_does_not_exist(make_settings: Any) -> None:
    """No admin_token configured: every admin route is a 404, whatever is sent."""
    settings = make_settings(ingress={"max_body_bytes": 1_048_576, "tolerance_seconds": 300})
    async with serve(create_app(settings)) as client:
        for method, path in ADMIN_ROUTES:
            for headers in ({}, {"authorization": "Bearer "}, {"authorization": f"Bearer {ADMIN_TOKEN}"}):
                assert (await client.request(method, path, headers=headers)).status_code == 404


# -- no secret anywhere --------------------------------------------------------------------------------------


def derived_secrets(settings: Settings) -> list[str]:
    """Every configured secret, plus the forms a secret travels in (Basic credentials, a bearer header)."""
    found = list(settings.secret_values())
    infinity = settings.vendors.infinity
    if infinity is not None:
        pair = f"{infinity.username}:{infinity.password.get_secret_value()}"
        found.append(base64.b64encode(pair.encode()).decode())
    sm = settings.vendors.salesmachine
    if sm is not None:
        pair = f"{sm.api_token.get_secret_value()}:{sm.api_secret.get_secret_value()}"
        found.append(base64.b64encode(pair.encode()).decode())
    return sorted(set(found))


def redis_values(client: redis.Redis, namespace: str) -> list[bytes]:
    """Every value under the namespace (and arq's keys for its jobs), whatever its type."""
    out: list[bytes] = []
    for pattern in (f"{namespace}:*", f"arq:*:{namespace}:*"):
        for key in client.scan_iter(match=pattern, count=1000):
            kind = client.type(key)
            if kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"hash":
                out.extend(k + b"=" + v for k, v in client.hgetall(key).items())
            elif kind == b"zset":
                out.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
            elif kind == b"list":
                out.extend(client.lrange(key, 0, -1))
            elif kind == b"set":
                out.extend(client.smembers(key))
            out.append(key)
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_no_secret_in_logs_metrics_dead_letters_or_bodies(tmp_path: Path, redis_url: str, namespace: str) -> None:
    """A run through every path with real processes; then every byte they produced is searched for every
    configured secret."""
    sandbox = SandboxProcess(tmp_path / "sandbox.log")
    data = base_config(redis_url, namespace)
    data["vendors"] = sandbox.vendor_tables()
    data["vendors"]["salesmachine"]["rate_per_second"] = 10_000
    data["delivery"] = {"timeout_seconds": 2, "schedule_seconds": [0.05, 0.1], "dedupe_seconds": 3600}
    data["worker"] = {"rate_max_wait_seconds": 0.5, "poll_delay_seconds": 0.01}
    config = write_config(tmp_path / "sluice.toml", data)
    settings = settings_from_mapping(data, {})
    secrets = derived_secrets(settings)
    c = settings.vendors
    assert c.segmetrics and c.salesmachine and c.personaclick and c.infinity
    # each vendor echoes back every credential it was sent, in every form it got it (a vendor can only echo
    # what it received): permanent failures go straight to the dead letters, transient ones after their tries
    basic_infinity = base64.b64encode(f"{c.infinity.username}:{c.infinity.password.get_secret_value()}".encode())
    basic_sm = base64.b64encode(
        f"{c.salesmachine.api_token.get_secret_value()}:{c.salesmachine.api_secret.get_secret_value()}".encode())
    echoes = {
        "segmetrics": [c.segmetrics.api_key.get_secret_value()],
        "infinity": [c.infinity.password.get_secret_value(), f"Basic {basic_infinity.decode()}"],
        "salesmachine": [c.salesmachine.api_token.get_secret_value(), c.salesmachine.api_secret.get_secret_value(),
                         c.salesmachine.api_token_v2.get_secret_value(), f"Basic {basic_sm.decode()}",
                         f"/v1/track/event?api_token={c.salesmachine.api_token.get_secret_value()}"],
        "personaclick": [f"shop_secret={c.personaclick.shop_secret.get_secret_value()}"],
    }
    sandbox.inject(vendor="segmetrics", status=401, times=2, body=orjson.dumps(
        {"error": f"invalid key {echoes['segmetrics'][0]}", "authorization": echoes["segmetrics"][0]}).decode())
    sandbox.inject(vendor="infinity", status=403, times=2, body=f"<html>forbidden: {echoes['infinity']}</html>",
                   content_type="text/html")
    sandbox.inject(vendor="salesmachine", status=400, times=2, body=f"bad request {echoes['salesmachine']}",
                   content_type="text/plain")
    sandbox.inject(vendor="personaclick", status=503, times=30,
                   body=orjson.dumps({"message": f"overloaded: {echoes['personaclick']}"}).decode())
    keys = Keys(namespace)
    client = redis.Redis.from_url(redis_url)
    bodies: list[str] = []
    ingress = IngressProcess(config, tmp_path / "ingress.log")
    worker = WorkerProcess(config, tmp_path / "worker.log")
    events = [cli_sample_event(t, time.time(), f"evt_sec_{i}") for i, t in enumerate(DEFAULT_ROUTES)]
    try:
        with httpx.Client(base_url=ingress.url, timeout=30) as http:
            def post(source: str, body: bytes, headers: dict[str, str]) -> None:
                bodies.append(http.post(f"/webhooks/{source}", content=body, headers=headers).text)

            for i, event in enumerate(events):  # valid, over the three schemes
                source = list(SIGNERS)[i % 3]
                post(source, orjson.dumps(event), signed(source, orjson.dumps(event), time.time()))
            body = orjson.dumps(events[0])
            post("shopfront", body, {"content-type": "application/json",
                                     **standard_headers(body, time.time(), secret="whsec_" + "A" * 32)})
            post("stripey", body, {"content-type": "application/json", "stripe-signature": "t=1,v1=00"})
            post("shopify", body, {"content-type": "application/json", "x-shopify-hmac-sha256": "AAAA"})
            post("shopfront", b"{not json", signed("shopfront", b"{not json", time.time()))
            post("shopfront", body, {"content-type": "text/plain"})
            post("nobody", body, {"content-type": "application/json"})
            post("shopfront", b"x" * 2_000_000, {"content-type": "application/json"})
            post("shopfront", body, signed("shopfront", body, time.time() - 10_000))  # a replay
            wait_until(lambda: not unfinished(client, keys, DEFAULT_ROUTES, "shopfront", events[0::3])
                       and not unfinished(client, keys, DEFAULT_ROUTES, "stripey", events[1::3])
                       and not unfinished(client, keys, DEFAULT_ROUTES, "shopify", events[2::3]), 60, 0.1,
                       "every call to be final")
            for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Bearer"}):
                bodies.append(http.get("/admin/dead-letters", headers=headers).text)
            admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
            listing = http.get("/admin/dead-letters", headers=admin).json()
            letters = [http.get(f"/admin/dead-letters/{item['id']}", headers=admin).text for item in listing["items"]]
            bodies.extend(http.get(f"/admin/events/{s}/{e['id']}", headers=admin).text
                          for s, e in zip([*SIGNERS] * 9, events, strict=False))
            bodies.append(http.get("/admin/dead-letters/nope", headers=admin).text)
            metrics = http.get("/metrics").text
            bodies.append(http.get("/openapi.json").text)
            bodies.append(http.post("/admin/dead-letters/replay", headers=admin, json={"dry_run": True}).text)
    finally:
        worker.stop()
        ingress.stop()
        sandbox.stop()
    stored = redis_values(client, namespace)
    client.close()
    produced = {
        "ingress log": (tmp_path / "ingress.log").read_bytes(),
        "worker log": (tmp_path / "worker.log").read_bytes(),
        "metrics": metrics.encode(),
        "dead letters": "\n".join(letters).encode(),
        "response bodies": "\n".join(bodies).encode(),
        "redis values": b"\n".join(stored),
    }
    leaks = [(where, secret) for where, blob in produced.items() for secret in secrets if secret.encode() in blob]
    dead_bodies = [orjson.loads(letter)["error"]["body"] for letter in letters]
    figures("secrets", {
        "secrets_checked": len(secrets), "dead_letters": len(letters),
        "dead_letters_with_echoing_bodies": sum("[redacted]" in b or "***" in b for b in dead_bodies),
        **{f"{where.replace(' ', '_')}_bytes": len(blob) for where, blob in produced.items()},
        "log_lines": produced["ingress log"].count(b"\n") + produced["worker log"].count(b"\n"),
        "leaks": len(leaks),
    })
    assert len(letters) >= 4  # the echoing failures really were dead-lettered
    for where, secret in sorted(set(leaks)):
        print(f"LEAK in {where}: {secret[:6]}…")
    assert leaks == []
