"""`sluice plan EVENT.json` (SPEC section 7): the requests it shows are the requests a real worker then sends
(byte for byte, for every event type), credentials masked, nothing sent, no Redis needed; and a bad event,
file, source or config is one line with the ingress's own error detail."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import config.toml
from cli.main import app
from cli.samples import sample_event
from core.events import InvalidEvent, validate_event
from core.idempotency import idempotency_key
from core.routing import EVENT_TYPES
from tests.conftest import base_config
from tests.support.worker import run_burst
from tests.worker.conftest import Events

T0 = 1_795_000_000.0
runner = CliRunner()


@pytest.fixture
def write_config(tmp_path: Path, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch):
    """`write_config(**tables)`: the test config (with the given top-level tables) as a TOML file; its env."""
    monkeypatch.delenv("REDIS_URL", raising=False)

    def write(**tables: Any) -> dict[str, str]:
        data = base_config(redis_url, namespace)
        data.update(tables)
        path = tmp_path / "sluice.toml"
        path.write_text(config.toml.dumps(data))
        return {"SLUICE_CONFIG": str(path)}

    return write


def event_file(tmp_path: Path, event: dict[str, Any]) -> str:
    path = tmp_path / "event.json"
    path.write_bytes(orjson.dumps(event))
    return str(path)


def masked(text: str, secrets: list[str]) -> str:
    """The test's own masking of what the sandbox received: each of its credentials as `****`."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


@pytest.mark.parametrize("event_type", EVENT_TYPES)
async def test_the_plan_is_what_the_worker_sends(event_type, write_config, make_settings, sandbox, redis_client,
                                                  tmp_path):
    """Run `plan --json`, then the real delivery of the same event by a burst worker against the sandbox:
    every call, every request in order, the same method, URL, body and headers (secrets masked on both
    sides, Authorization only by scheme)."""
    event = sample_event(event_type, T0, "evt_plan")
    env = write_config(vendors=sandbox.vendor_tables())
    result = await asyncio.to_thread(runner.invoke, app, ["plan", event_file(tmp_path, event), "--source",
                                                          "shopfront", "--json"], env=env)
    assert result.exit_code == 0, result.output
    planned = orjson.loads(result.stdout)
    assert sandbox.state.requests == []  # the plan sent nothing

    settings = make_settings(vendors=sandbox.vendor_tables())
    await Events(redis_client, settings).accept(event)
    await run_burst(settings)

    received: dict[str, list[Any]] = defaultdict(list)
    for request in sandbox.state.requests:
        received[request.idempotency_key].append(request)
    secrets = settings.secret_values()
    sent_calls = [c for c in planned["calls"] if c["outcome"] != "skipped"]
    assert sent_calls and all(c["outcome"] == "planned" for c in sent_calls)
    assert set(received) == {c["idempotency_key"] for c in sent_calls}
    for call in sent_calls:
        assert call["idempotency_key"] == idempotency_key("shopfront", "evt_plan", call["vendor"], call["operation"])
        got = received[call["idempotency_key"]]
        assert len(got) == len(call["requests"]), call["operation"]
        for shown, real in zip(call["requests"], got, strict=True):
            url = f"{sandbox.url}{real.path}" + (f"?{real.query}" if real.query else "")  # paths here need no quoting
            assert (shown["method"], shown["url"], shown["body"] or "") == (real.method, masked(url, secrets),
                                                                          masked(real.body, secrets))
            for name, value in shown["headers"].items():
                if name.lower() == "authorization":
                    assert value in ("****", "Basic ****")
                else:
                    assert real.headers[name.lower()] == value, name


async def test_segment_upsert_shows_its_lookups_with_assumed_answers(write_config, sandbox, tmp_path):
    """Infinity's find-then-create: the lookups, each with the empty vendor's assumed answer, then the creates."""
    env = write_config(vendors=sandbox.vendor_tables())
    path = event_file(tmp_path, sample_event("segment.upsert", T0, "evt_up"))
    result = await asyncio.to_thread(runner.invoke, app, ["plan", path, "--source", "shopfront", "--json"], env=env)
    [call] = orjson.loads(result.stdout)["calls"]
    steps = [(r["method"], r["url"].rsplit("/igrps/1", 1)[1], r["assumed_answer"]["status"]) for r in call["requests"]]
    assert steps == [
        ("GET", "/segmentGroups?filter%5B%5D=segmentGroupName-eq-value-Customers", 200),
        ("POST", "/segmentGroups", 201),
        ("GET", "/segments?filter%5B%5D=segmentRef-eq-value-vip", 200),
        ("POST", "/segments", 201),
    ]
    assert call["requests"][0]["assumed_answer"]["body"] == ""  # nothing found
    human = await asyncio.to_thread(runner.invoke, app, ["plan", path, "--source", "shopfront"], env=env)
    assert human.exit_code == 0
    assert "assumed" in human.stdout and human.stdout.count("(a lookup: what follows depends on its answer)") == 2


@pytest.mark.parametrize("as_json", [True, False])
@pytest.mark.parametrize("event_type", ["signup", "segment.join", "contact.delete", "segment.upsert"])
def test_no_secret_is_shown(event_type, as_json, write_config, make_settings, sandbox, tmp_path):
    """Authorization by its scheme only, tokens in query strings and every configured secret as ****."""
    env = write_config(vendors=sandbox.vendor_tables())
    args = ["plan", event_file(tmp_path, sample_event(event_type, T0, "evt_s")), "--source", "shopfront"]
    result = runner.invoke(app, args + (["--json"] if as_json else []), env=env)
    assert result.exit_code == 0, result.output
    shown = result.stdout
    for secret in make_settings(vendors=sandbox.vendor_tables()).secret_values():
        assert secret not in shown
    if event_type == "signup":
        assert "api_token=****" in shown and "Basic ****" in shown
    if event_type == "segment.join":
        assert '"shop_secret":"****"' in shown.replace('\\"', '"')


def test_unconfigured_vendors_and_v2_without_a_token_are_skipped(write_config, sandbox, tmp_path):
    tables = sandbox.vendor_tables()
    tables["salesmachine"]["api_token_v2"] = ""
    env = write_config(vendors={"salesmachine": tables["salesmachine"]})
    path = event_file(tmp_path, sample_event("contact.delete", T0, "evt_d"))
    result = runner.invoke(app, ["plan", path, "--source", "shopfront", "--json"], env=env)
    calls = {f"{c['vendor']}.{c['operation']}": c for c in orjson.loads(result.stdout)["calls"]}
    assert {name: c["outcome"] for name, c in calls.items()} == {
        "segmetrics.delete_contact": "skipped", "salesmachine.delete_contact": "skipped",
        "personaclick.purge_profile": "skipped",
    }
    assert "api_token_v2" in calls["salesmachine.delete_contact"]["reason"]
    assert "not configured" in calls["segmetrics.delete_contact"]["reason"]
    assert all(c["requests"] == [] for c in calls.values())


def test_an_unmapped_segment_fails_as_the_worker_would(write_config, sandbox, tmp_path):
    event = sample_event("segment.join", T0, "evt_u")
    event["data"]["segment"] = {"id": "ghosts", "name": "Ghosts"}
    env = write_config(vendors=sandbox.vendor_tables())
    result = runner.invoke(app, ["plan", event_file(tmp_path, event), "--source", "shopfront", "--json"], env=env)
    calls = {c["vendor"]: c for c in orjson.loads(result.stdout)["calls"]}
    assert calls["personaclick"]["outcome"] == "fails" and "segments" in calls["personaclick"]["reason"]
    assert calls["segmetrics"]["outcome"] == "planned"


def test_the_only_source_is_the_default_and_no_redis_is_needed(tmp_path, write_config, sandbox):
    env = write_config(redis_url="redis://127.0.0.1:1/0", vendors=sandbox.vendor_tables(),
                       sources={"shop": {"scheme": "stripe", "secrets": ["s3cret"]}})
    result = runner.invoke(app, ["plan", event_file(tmp_path, sample_event("refund", T0, "evt_r")), "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    calls = orjson.loads(result.stdout)["calls"]
    assert calls[0]["idempotency_key"] == idempotency_key("shop", "evt_r", "segmetrics", "upsert_invoice")


INVALID = b'{"id": "evt 1", "type": "purchase", "occurred_at": "yesterday", "contact": {"id": "c"}, "data": {}}'


@pytest.mark.parametrize("body", [INVALID, b"{not json", b"[]", b""])
def test_an_invalid_event_gets_the_ingress_detail(body, tmp_path, write_config):
    """Exit 1, one line on stderr; with --json the ingress's own 400 body on stdout (the same validator)."""
    env = write_config()
    path = tmp_path / "bad.json"
    path.write_bytes(body)
    with pytest.raises(InvalidEvent) as raised:
        validate_event(body)
    expected = {"error": "invalid_event", "detail": raised.value.details}
    result = runner.invoke(app, ["plan", str(path), "--source", "shopfront", "--json"], env=env)
    assert result.exit_code == 1
    assert orjson.loads(result.stdout) == expected
    assert result.stderr.strip().splitlines() == [f"sluice: {path} is not a valid event: {orjson.dumps(expected).decode()}"]
    human = runner.invoke(app, ["plan", str(path), "--source", "shopfront"], env=env)
    assert human.exit_code == 1 and human.stdout == "" and len(human.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "{missing}", "--source", "shopfront"], "cannot read"),
        (["plan", "{dir}", "--source", "shopfront"], "cannot read"),
        (["plan", "{event}"], "say which source"),
        (["plan", "{event}", "--source", "nobody"], "no source 'nobody'"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, write_config):
    env = write_config()
    names = {"missing": str(tmp_path / "nope.json"), "dir": str(tmp_path),
             "event": event_file(tmp_path, sample_event("signup", T0, "evt_1"))}
    result = runner.invoke(app, [a.format(**names) for a in args], env=env)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_over_the_ingress_limit_is_refused(tmp_path, write_config):
    env = write_config(ingress={"max_body_bytes": 100})
    result = runner.invoke(app, ["plan", event_file(tmp_path, sample_event("signup", T0, "evt_1")),
                                 "--source", "shopfront"], env=env)
    assert result.exit_code == 1 and "payload_too_large" in result.stderr


def test_a_bad_config_is_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "bad.toml"
    path.write_text('[delivery]\nmax_retry_after_seconds = 0\n')
    result = runner.invoke(app, ["plan", str(tmp_path / "e.json")], env={"SLUICE_CONFIG": str(path)})
    assert result.exit_code == 2 and "delivery.max_retry_after_seconds" in result.stderr
