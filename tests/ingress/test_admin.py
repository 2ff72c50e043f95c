"""The admin API (SPEC section 7) through the real app: auth, every route, filters, paging, bulk replay."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis

from cli.samples import sample_event
from config.settings import DeliverySettings
from core.idempotency import idempotency_key
from ingress.app import create_app
from store.calls import CallState
from store.dead_letters import DeadLetterStore, dead_letter_record, new_id
from store.intake import Intake
from store.keys import Keys
from tests.ingress.conftest import serve, signed

T0 = 1_795_000_000.0
AUTH = {"Authorization": "Bearer admin-token-s3cret"}


async def seed(redis_client: aredis.Redis, namespace: str, n: int, *, vendor: str = "segmetrics",
               first: int = 0) -> list[dict]:
    keys = Keys(namespace)
    store = DeadLetterStore(redis_client, keys, Intake(redis_client, keys, DeliverySettings()))
    letters = []
    async with redis_client.pipeline(transaction=False) as pipe:
        for i in range(first, first + n):
            at = T0 + i
            state = CallState().failed({"class": "transient", "status": 503, "message": "down", "body": ""}, at,
                                       next_at=None)
            letter = dead_letter_record(dl_id=new_id(at), source="shopfront",
                                        event=sample_event("purchase" if i % 2 else "signup", at, f"evt_{i}"),
                                        vendor=vendor, operation="upsert_contact",
                                        idempotency_key=idempotency_key("shopfront", f"evt_{i}", vendor, "x"),
                                        state=state)
            keys_, args = store.put_args(letter, state)
            await store.put_script(keys=keys_, args=args, client=pipe)
            letters.append(letter)
        await pipe.execute()
    return letters


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/events/shopfront/x"), ("GET", "/admin/dead-letters"), ("GET", "/admin/dead-letters/dl_x"),
     ("POST", "/admin/dead-letters/dl_x/replay"), ("POST", "/admin/dead-letters/replay"),
     ("DELETE", "/admin/dead-letters/dl_x")],
)
@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Bearer wrong", "Basic admin-token-s3cret",
                                    "bearer admin-token-s3cret", "Bearer admin-token-s3cret "])
async def test_every_route_refuses_missing_wrong_and_empty_tokens(client, method, path, header) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 401 and response.json() == {"error": "unauthorized"}


async def test_no_token_configured_means_no_admin_api(make_settings) -> None:
    settings = make_settings(ingress={"admin_token": ""})
    async with serve(create_app(settings)) as client:
        for header in ({}, AUTH, {"Authorization": "Bearer "}):
            response = await client.get("/admin/dead-letters", headers=header)
            assert response.status_code == 404 and response.json() == {"error": "not_found"}


async def test_list_filters_pages_and_shows(client, redis_client, namespace) -> None:
    letters = await seed(redis_client, namespace, 5) + await seed(redis_client, namespace, 3, vendor="salesmachine",
                                                                  first=5)
    response = await client.get("/admin/dead-letters", headers=AUTH)
    assert response.status_code == 200
    assert [x["id"] for x in response.json()["items"]] == [x["id"] for x in letters]
    assert response.json()["next_cursor"] is None

    seen, cursor = [], None
    while True:
        params = {"vendor": "segmetrics", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/admin/dead-letters", params=params, headers=AUTH)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [x["id"] for x in seen] == [x["id"] for x in letters[:5]]

    params = {"type": "purchase", "since": "2026-11-18T00:00:00Z", "until": letters[3]["last_failed_at"]}
    page = (await client.get("/admin/dead-letters", params=params, headers=AUTH)).json()
    assert [x["event_id"] for x in page["items"]] == ["evt_1", "evt_3"]

    response = await client.get(f"/admin/dead-letters/{letters[0]['id']}", headers=AUTH)
    assert response.status_code == 200 and response.json() == letters[0]
    response = await client.get("/admin/dead-letters/dl_nope", headers=AUTH)
    assert response.status_code == 404 and response.json() == {"error": "not_found"}


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"since": "yesterday"},
                                    {"cursor": "garbage"}])
async def test_bad_list_parameters_are_400(client, params) -> None:
    response = await client.get("/admin/dead-letters", params=params, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_replay_one_and_delete(client, redis_client, namespace) -> None:
    letters = await seed(redis_client, namespace, 2)
    response = await client.post(f"/admin/dead-letters/{letters[0]['id']}/replay", headers=AUTH)
    assert response.status_code == 202 and response.json() == {"replayed": 1}
    assert await redis_client.zcard(Keys(namespace).queue) == 1
    response = await client.post(f"/admin/dead-letters/{letters[0]['id']}/replay", headers=AUTH)
    assert response.status_code == 404
    response = await client.delete(f"/admin/dead-letters/{letters[1]['id']}", headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    response = await client.delete(f"/admin/dead-letters/{letters[1]['id']}", headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize("body", [b"[1]", b"{", b'{"dry_run": "yes"}', b'{"since": "nope"}', b'{"colour": 1}'])
async def test_bad_bulk_replay_bodies_are_400(client, body) -> None:
    response = await client.post("/admin/dead-letters/replay", content=body, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_bulk_replay_of_10000_does_not_block_webhooks(settings, clock, redis_client, namespace) -> None:
    """10,000 dead letters: the dry run counts them, the replay answers at once and works in batches while
    a webhook is still answered promptly; afterwards every letter is back in the queue."""
    await seed(redis_client, namespace, 10_000)
    async with serve(create_app(settings, clock=clock)) as client:
        dry = await client.post("/admin/dead-letters/replay", json={"dry_run": True, "vendor": "segmetrics"},
                                headers=AUTH)
        assert dry.status_code == 200 and dry.json() == {"would_replay": 10_000}
        response = await client.post("/admin/dead-letters/replay", json={"vendor": "segmetrics"}, headers=AUTH)
        assert response.status_code == 202 and response.json() == {"replayed": 10_000}
        body = b'{"id":"evt_live","type":"signup","occurred_at":"2026-11-24T10:00:00Z",' \
               b'"contact":{"id":"c","email":"a@example.com"},"data":{}}'
        started = time.perf_counter()
        webhook = await client.post("/webhooks/shopfront", content=body, headers=signed("shopfront", body, clock()))
        assert webhook.status_code == 202
        assert time.perf_counter() - started < 1.0
        keys = Keys(namespace)
        for _ in range(2000):  # bounded wait for the background batches
            if await redis_client.zcard(keys.queue) == 10_001:
                break
            await asyncio.sleep(0.005)
        assert await redis_client.zcard(keys.queue) == 10_001
        assert await redis_client.zcard(keys.dead_index) == 0


async def test_event_view(client, redis_client, namespace, clock) -> None:
    body = b'{"id":"evt_v","type":"segment.delete","occurred_at":"2026-11-24T10:00:00Z","data":{"segment":{"id":"s"}}}'
    assert (await client.post("/webhooks/shopfront", content=body, headers=signed("shopfront", body, clock()))
            ).status_code == 202
    response = await client.get("/admin/events/shopfront/evt_v", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["calls"] == [
        {"vendor": "infinity", "operation": "delete_segment", "status": "pending", "attempts": 0, "last_error": None}]
    assert (await client.get("/admin/events/shopfront/nope", headers=AUTH)).status_code == 404
