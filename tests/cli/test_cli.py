"""The `sluice` CLI against a real Redis: dead letters, events, errors as one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aredis
from typer.testing import CliRunner

from cli.main import app
from cli.samples import sample_event
from core.idempotency import idempotency_key
from store.calls import CallState
from store.dead_letters import DeadLetterStore, dead_letter_record, new_id
from store.intake import Intake
from store.keys import Keys

T0 = 1_795_000_000.0
runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path, redis_url: str, namespace: str) -> Path:
    path = tmp_path / "sluice.toml"
    path.write_text(
        f'redis_url = "{redis_url}"\nnamespace = "{namespace}"\n'
        '[sources.shopfront]\nscheme = "standard-webhooks"\nsecrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]\n'
    )
    return path


@pytest.fixture
def env(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    return {"SLUICE_CONFIG": str(config_file)}


def seed(redis_url: str, namespace: str, vendors: list[str]) -> list[dict]:
    """Dead letters for event evt_<n> at vendor n; returns them oldest first."""

    async def go() -> list[dict]:
        client = aredis.Redis.from_url(redis_url)
        keys = Keys(namespace)
        from config.settings import DeliverySettings

        store = DeadLetterStore(client, keys, Intake(client, keys, DeliverySettings()))
        letters = []
        for n, vendor in enumerate(vendors):
            at = T0 + n
            state = CallState().failed({"class": "permanent", "status": 400, "message": "bad", "body": ""}, at,
                                       next_at=None)
            event = sample_event("signup", at, f"evt_{n}")
            letter = dead_letter_record(dl_id=new_id(at), source="shopfront", event=event, vendor=vendor,
                                        operation="upsert_contact",
                                        idempotency_key=idempotency_key("shopfront", f"evt_{n}", vendor, "x"),
                                        state=state)
            await store.put(letter, state)
            letters.append(letter)
        await client.aclose()
        return letters

    return asyncio.run(go())


def test_list_show_replay_purge(env, redis_url, namespace) -> None:
    letters = seed(redis_url, namespace, ["segmetrics", "salesmachine", "segmetrics"])
    result = runner.invoke(app, ["dlq", "list", "--json", "--vendor", "segmetrics"], env=env)
    assert result.exit_code == 0, result.output
    assert [x["id"] for x in orjson.loads(result.stdout)["items"]] == [letters[0]["id"], letters[2]["id"]]

    result = runner.invoke(app, ["dlq", "list"], env=env)
    assert result.exit_code == 0 and letters[1]["id"] in result.stdout

    result = runner.invoke(app, ["dlq", "show", letters[1]["id"]], env=env)
    assert orjson.loads(result.stdout) == letters[1]

    result = runner.invoke(app, ["dlq", "replay", "--vendor", "segmetrics", "--dry-run", "--json"], env=env)
    assert orjson.loads(result.stdout) == {"would_replay": 2}
    result = runner.invoke(app, ["dlq", "replay", "--vendor", "segmetrics", "--json"], env=env)
    assert orjson.loads(result.stdout) == {"replayed": 2}

    result = runner.invoke(app, ["dlq", "purge", letters[1]["id"], "--json"], env=env)
    assert orjson.loads(result.stdout) == {"purged": 1}
    result = runner.invoke(app, ["dlq", "list", "--json"], env=env)
    assert orjson.loads(result.stdout) == {"items": [], "next_cursor": None}


def test_events_show(env, redis_url, namespace) -> None:
    seed(redis_url, namespace, ["segmetrics"])
    result = runner.invoke(app, ["dlq", "replay", "--json"], env=env)  # replay stores the event again
    result = runner.invoke(app, ["events", "show", "shopfront", "evt_0", "--json"], env=env)
    assert result.exit_code == 0, result.output
    view = orjson.loads(result.stdout)
    assert view["event"]["id"] == "evt_0"
    assert {"vendor": "segmetrics", "operation": "upsert_contact", "status": "pending", "attempts": 0,
            "last_error": None} in view["calls"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "show", "dl_nope"], "no dead letter dl_nope"),
        (["dlq", "replay", "dl_nope"], "no dead letter dl_nope"),
        (["dlq", "list", "--since", "yesterday"], "since: not an RFC 3339 time"),
        (["dlq", "list", "--cursor", "junk"], "cursor"),
        (["events", "show", "shopfront", "nope"], "no event nope"),
        (["send", "nonsense", "--source", "shopfront"], "unknown event type"),
        (["send", "signup", "--source", "nobody"], "no source 'nobody'"),
        (["send", "signup", "--source", "shopfront", "--url", "http://127.0.0.1:1"], "cannot post"),
    ],
)
def test_errors_are_one_line(env, args, message) -> None:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_redis_down_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "down.toml"
    path.write_text('redis_url = "redis://127.0.0.1:1/0"\n')
    result = runner.invoke(app, ["dlq", "list"], env={"SLUICE_CONFIG": str(path)})
    assert result.exit_code == 1 and result.stderr.startswith("sluice: cannot reach Redis at ") and "127.0.0.1:1/0" in result.stderr


def test_bad_config_names_the_key(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "bad.toml"
    path.write_text('[delivery]\ntimeout_seconds = "soon"\n')
    result = runner.invoke(app, ["dlq", "list"], env={"SLUICE_CONFIG": str(path)})
    assert result.exit_code == 2 and "delivery.timeout_seconds" in result.stderr


def test_replay_with_force_marks_the_call_to_bypass_the_ordering_rule(env, redis_url, namespace) -> None:
    letters = seed(redis_url, namespace, ["segmetrics", "salesmachine"])
    result = runner.invoke(app, ["dlq", "replay", letters[0]["id"], "--force", "--json"], env=env)
    assert orjson.loads(result.stdout) == {"replayed": 1}
    result = runner.invoke(app, ["dlq", "replay", "--json"], env=env)  # the other one, not forced

    async def states() -> dict[str, CallState]:
        client = aredis.Redis.from_url(redis_url)
        keys = Keys(namespace)
        found = {}
        for letter in letters:
            raw = await client.hget(keys.calls("shopfront", letter["event_id"]),
                                    f"{letter['vendor']}.{letter['operation']}")
            found[letter["vendor"]] = CallState.loads(raw)
        await client.aclose()
        return found

    found = asyncio.run(states())
    assert found["segmetrics"].forced and not found["salesmachine"].forced


def test_events_show_names_who_superseded_a_call(env, redis_url, namespace) -> None:
    seed(redis_url, namespace, ["segmetrics"])
    runner.invoke(app, ["dlq", "replay", "--json"], env=env)

    async def supersede() -> None:
        client = aredis.Redis.from_url(redis_url)
        await client.hset(Keys(namespace).calls("shopfront", "evt_0"), "segmetrics.upsert_contact",
                          CallState().superseded("evt_later").dumps())
        await client.aclose()

    asyncio.run(supersede())
    result = runner.invoke(app, ["events", "show", "shopfront", "evt_0"], env=env)
    assert result.exit_code == 0 and "superseded by evt_later" in result.stdout
    view = orjson.loads(runner.invoke(app, ["events", "show", "shopfront", "evt_0", "--json"], env=env).stdout)
    [call] = [c for c in view["calls"] if (c["vendor"], c["operation"]) == ("segmetrics", "upsert_contact")]
    assert (call["status"], call["superseded_by"]) == ("superseded", "evt_later")
