"""`POST /webhooks/{source}` over HTTP: every status of SPEC section 3 for every scheme, in the stated order
of checks, with real Redis and a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aredis
from structlog.testing import capture_logs

from config.settings import Settings
from core.clock import FrozenClock
from ingress.app import create_app
from ingress.webhooks import is_webhook
from store.intake import BatchingIntake, Intake
from store.keys import Keys
from tests.ingress.conftest import (
    SIGNERS,
    SOURCES,
    dumps,
    sample_event,
    serve,
    shopify_headers,
    signed,
    standard_headers,
    stripe_headers,
)
from tests.support.redis_server import free_port

EVENT = sample_event()
BODY = dumps(EVENT)
QUEUED = {"id": EVENT["id"], "status": "queued"}


async def stored_keys(redis_client: aredis.Redis, namespace: str) -> list[bytes]:
    found = [k async for k in redis_client.scan_iter(match=f"{namespace}:*")]
    return found + [k async for k in redis_client.scan_iter(match=f"arq:*:{namespace}:*")]


async def post(client: httpx.AsyncClient, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"/webhooks/{source}", content=body, headers=headers)


@pytest.mark.parametrize("source", SOURCES)
async def test_accepted_then_duplicate(source: str, client: httpx.AsyncClient, clock: FrozenClock,
                                       redis_client: aredis.Redis, namespace: str) -> None:
    """A verified, valid event is stored as sent and queued once (202); the same id again is 200 duplicate."""
    body = orjson.dumps(EVENT, option=orjson.OPT_INDENT_2) + b"\n"  # the exact bytes sent are what is stored
    response = await post(client, source, body, signed(source, body, clock()))
    assert (response.status_code, response.json()) == (202, QUEUED)
    assert response.headers["content-type"] == "application/json"
    keys = Keys(namespace)
    assert await redis_client.get(keys.event(source, EVENT["id"])) == body
    assert await redis_client.zcard(keys.queue) == 1

    clock.advance(60)
    again = await post(client, source, body, signed(source, body, clock()))
    assert (again.status_code, again.json()) == (200, {"id": EVENT["id"], "status": "duplicate"})
    assert await redis_client.zcard(keys.queue) == 1


async def test_same_id_from_two_sources_is_two_events(client: httpx.AsyncClient, clock: FrozenClock,
                                                      redis_client: aredis.Redis, namespace: str) -> None:
    """Dedupe is per (source, id)."""
    for source in ("shopfront", "stripey"):
        response = await post(client, source, BODY, signed(source, BODY, clock()))
        assert response.status_code == 202
    assert await redis_client.zcard(Keys(namespace).queue) == 2


@pytest.mark.parametrize("acceptor", [Intake, BatchingIntake])
async def test_twenty_concurrent_copies_store_one(acceptor: Any, settings: Settings, clock: FrozenClock,
                                                  redis_client: aredis.Redis, namespace: str) -> None:
    """20 identical deliveries at once: exactly one 202, nineteen 200 duplicates, one job in the queue."""
    async with serve(create_app(settings, clock=clock, acceptor=acceptor)) as client:
        headers = signed("shopfront", BODY, clock())
        responses = await asyncio.gather(*(post(client, "shopfront", BODY, headers) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [202]
    assert {r.json()["status"] for r in responses} == {"queued", "duplicate"}
    assert await redis_client.zcard(f"{namespace}:queue") == 1


INVALID = [
    (b"not json", {"body"}),
    (b"[1, 2]", {"body"}),
    (b'{"id": "a", "id": "b"}', {"body"}),
    (b"\xff\xfe{}", {"body"}),
    (dumps({**EVENT, "id": "has space", "contact": {"id": "c"}}), {"id", "contact"}),
    (dumps({**EVENT, "data": {"order": {"id": "o", "amount_cents": 12.5}}}), {"data.order.amount_cents"}),
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("body", "fields"), INVALID)
async def test_invalid_event(source: str, body: bytes, fields: set[str], client: httpx.AsyncClient,
                             clock: FrozenClock, redis_client: aredis.Redis, namespace: str) -> None:
    """A correctly signed body that is not a valid event is 400 naming each bad field, and nothing is stored."""
    response = await post(client, source, body, signed(source, body, clock()))
    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"error", "detail"} and answer["error"] == "invalid_event"
    assert {d["field"] for d in answer["detail"]} == fields
    assert all(set(d) == {"field", "problem"} for d in answer["detail"])
    assert await stored_keys(redis_client, namespace) == []


def _wrong_secret(source: str, body: bytes, ts: float) -> dict[str, str]:
    if source == "shopfront":
        return standard_headers(body, ts, secret="whsec_" + "QUJDREVGR0hJSktMTU5PUA==")
    if source == "stripey":
        return stripe_headers(body, ts, secret="not-the-secret")
    return shopify_headers(body, ts, secret="not-the-secret")


UNSIGNED: list[tuple[str, Callable[[str, bytes, float], dict[str, str]]]] = [
    ("no signature headers", lambda source, body, ts: {}),
    ("wrong secret", _wrong_secret),
    ("signed for another body", lambda source, body, ts: SIGNERS[source](body + b" ", ts)),
    ("stale", lambda source, body, ts: SIGNERS[source](body, ts - 301)),
    ("future", lambda source, body, ts: SIGNERS[source](body, ts + 301)),
    ("another scheme's headers", lambda source, body, ts: SIGNERS[
        "stripey" if source != "stripey" else "shopfront"](body, ts)),
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("case", "sign"), UNSIGNED, ids=[c[0] for c in UNSIGNED])
async def test_invalid_signature(source: str, case: str, sign: Callable[[str, bytes, float], dict[str, str]],
                                 client: httpx.AsyncClient, clock: FrozenClock, redis_client: aredis.Redis,
                                 namespace: str) -> None:
    """Missing, wrong, stale or future signatures are 401 with the exact body, and nothing is stored."""
    if source == "shopify" and case in {"stale", "future"}:
        headers = shopify_headers(BODY, clock() + (-301 if case == "stale" else 301))
    else:
        headers = sign(source, BODY, clock())
    response = await post(client, source, BODY, {"content-type": "application/json", **headers})
    assert (response.status_code, response.json()) == (401, {"error": "invalid_signature"})
    assert await stored_keys(redis_client, namespace) == []


async def test_shopify_without_triggered_at_is_accepted(client: httpx.AsyncClient) -> None:
    """X-Shopify-Triggered-At is checked only when sent."""
    response = await post(client, "shopify", BODY, {"content-type": "application/json", **shopify_headers(BODY)})
    assert response.status_code == 202


@pytest.mark.parametrize("source", SOURCES)
async def test_either_secret_of_a_rotation(source: str, make_settings: Callable[..., Settings],
                                           clock: FrozenClock) -> None:
    """With two secrets configured, a request signed by either is accepted."""
    second = {"shopfront": "whsec_" + "QUJDREVGR0hJSktMTU5PUA==", "stripey": "stripe-secret-two",
              "shopify": "shopify-secret-two"}[source]
    from tests.conftest import SECRET

    first = {"shopfront": SECRET, "stripey": "stripe-secret-one", "shopify": "shopify-secret-one"}[source]
    settings = make_settings(sources={source: {"scheme": {"shopfront": "standard-webhooks", "stripey": "stripe",
                                                          "shopify": "shopify"}[source], "secrets": [first, second]}})
    signer = SIGNERS[source]
    async with serve(create_app(settings, clock=clock)) as client:
        for i, secret in enumerate((first, second)):
            body = dumps(sample_event(id=f"evt_{i}"))
            headers = signer(body, clock(), secret=secret)  # type: ignore[call-arg]
            response = await post(client, source, body, {"content-type": "application/json", **headers})
            assert response.status_code == 202, secret


MALFORMED = [
    ("shopfront", {"webhook-id": "m", "webhook-timestamp": "1795000000", "webhook-signature": "v1"}),
    ("shopfront", {"webhook-id": "m", "webhook-timestamp": "1795000000", "webhook-signature": "v1,%%%"}),
    ("shopfront", {"webhook-id": "m", "webhook-timestamp": "1795000000", "webhook-signature": ""}),
    ("shopfront", {"webhook-id": "m", "webhook-timestamp": "now", "webhook-signature": "v1,AAAA"}),
    ("shopfront", {"webhook-id": "", "webhook-timestamp": "", "webhook-signature": " "}),
    ("stripey", {"stripe-signature": "t=1795000000"}),
    ("stripey", {"stripe-signature": "garbage"}),
    ("stripey", {"stripe-signature": ""}),
    ("stripey", {"stripe-signature": "t=x,v1=y"}),
    ("shopify", {"x-shopify-hmac-sha256": "%%%"}),
    ("shopify", {"x-shopify-hmac-sha256": ""}),
    ("shopify", {"x-shopify-hmac-sha256": "AAAA", "x-shopify-triggered-at": "yesterday"}),
]


@pytest.mark.parametrize(("source", "headers"), MALFORMED)
async def test_malformed_signature_headers_are_401(source: str, headers: dict[str, str],
                                                   client: httpx.AsyncClient) -> None:
    """No comma, bad base64, empty, non-numeric: always 401, never a 500."""
    response = await post(client, source, BODY, {"content-type": "application/json", **headers})
    assert (response.status_code, response.json()) == (401, {"error": "invalid_signature"})


async def test_unicode_junk_in_signature_headers_is_401(client: httpx.AsyncClient) -> None:
    """Non-ASCII bytes in a signing header are refused like any other bad signature."""
    junk = "v1,\u00e9\u00e8\u2603".encode()
    raw = [(b"content-type", b"application/json"), (b"webhook-id", "\u00ff".encode()),
           (b"webhook-timestamp", "\u0661\u0662".encode()), (b"webhook-signature", junk)]
    response = await client.post("/webhooks/shopfront", content=BODY, headers=httpx.Headers(raw))
    assert response.status_code == 401


async def test_unknown_source(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """An unknown source is 404 before anything else is looked at."""
    response = await post(client, "nobody", b"x" * 10, {"content-type": "text/plain"})
    assert (response.status_code, response.json()) == (404, {"error": "unknown_source"})
    response = await post(client, "shopfront-2", BODY, signed("shopfront", BODY, clock()))
    assert (response.status_code, response.json()) == (404, {"error": "unknown_source"})


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", "application/+json", "json", "text/json",
                                          "multipart/form-data; boundary=x"])
async def test_unsupported_media_type(source: str, content_type: str | None, client: httpx.AsyncClient,
                                      clock: FrozenClock) -> None:
    """Anything but JSON is 415, even when signed."""
    headers = SIGNERS[source](BODY, clock())
    if content_type is not None:
        headers["content-type"] = content_type
    response = await post(client, source, BODY, headers)
    assert (response.status_code, response.json()) == (415, {"error": "unsupported_media_type"})


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;Charset=UTF-8", " application/json ",
                                          "application/vnd.shopfront.event+json", "application/cloudevents+json"])
async def test_json_media_types(content_type: str, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """application/json with any parameters and in any case, and the `+json` structured suffix, are JSON."""
    headers = {**standard_headers(BODY, clock()), "content-type": content_type}
    assert (await post(client, "shopfront", BODY, headers)).status_code == 202


@pytest.fixture
async def small_client(make_settings: Callable[..., Settings], clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(ingress={"max_body_bytes": 1024, "tolerance_seconds": 300})
    async with serve(create_app(settings, clock=clock)) as client:
        yield client


@pytest.mark.parametrize("source", SOURCES)
async def test_payload_too_large_by_content_length(source: str, small_client: httpx.AsyncClient,
                                                   clock: FrozenClock) -> None:
    """A declared length over the limit is 413; a body of exactly the limit is read."""
    big = dumps(sample_event(pad="x" * 1100))
    response = await post(small_client, source, big, signed(source, big, clock()))
    assert (response.status_code, response.json()) == (413, {"error": "payload_too_large"})

    exact = dumps(sample_event(pad=""))
    exact = exact[:-1] + b" " * (1024 - len(exact)) + b"}"
    assert len(exact) == 1024
    response = await post(small_client, source, exact, signed(source, exact, clock()))
    assert response.status_code == 202


async def test_declared_length_refused_without_reading(settings: Settings, clock: FrozenClock) -> None:
    """With a Content-Length over the limit, not one byte of the body is read."""
    app = create_app(settings, clock=clock)
    received: list[Any] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    messages = await _call(app, {"content-type": "application/json", "content-length": str(50 * 2**20)}, receive)
    assert messages[0]["status"] == 413
    assert received == []


async def test_streamed_body_over_the_limit_stops_reading(settings: Settings, clock: FrozenClock) -> None:
    """A chunked 50 MB body (no Content-Length) is cut off right after the limit: 413, the rest never pulled."""
    chunk = b"x" * 65536
    pulled = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(50 * 16):
            pulled += 1
            yield chunk

    async with serve(create_app(settings, clock=clock)) as client:
        response = await client.post("/webhooks/shopfront", content=fifty_megabytes(),
                                     headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()) == (413, {"error": "payload_too_large"})
    limit_chunks = settings.ingress.max_body_bytes // len(chunk)
    assert pulled <= limit_chunks + 1 < 50 * 16


async def _call(app: Any, headers: dict[str, str], receive: Any) -> list[dict[str, Any]]:
    """One raw ASGI request to /webhooks/shopfront, with the lifespan run around it."""
    from tests.ingress.conftest import Lifespan

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with Lifespan(app) as served:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/webhooks/shopfront", "raw_path": b"/webhooks/shopfront",
                 "query_string": b"", "root_path": "", "server": ("ingress", 80), "client": ("127.0.0.1", 1),
                 "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
        await served(scope, receive, send)
    return sent


async def test_client_gone_mid_body(settings: Settings, clock: FrozenClock) -> None:
    """A sender that disconnects while sending gets nothing stored and no error raised."""
    app = create_app(settings, clock=clock)
    messages = iter([{"type": "http.request", "body": b'{"id":', "more_body": True}, {"type": "http.disconnect"}])

    async def receive() -> Any:
        return next(messages)

    sent = await _call(app, {"content-type": "application/json"}, receive)
    assert sent[0]["status"] == 400


ORDER = [
    ("unknown source first", "nobody", {"content-type": "text/plain"}, b"x" * 2000, 404),
    ("content type before size", "shopfront", {"content-type": "text/plain"}, b"x" * 2000, 415),
    ("size before signature", "shopfront", {"content-type": "application/json"}, b"x" * 2000, 413),
    ("signature before JSON", "shopfront", {"content-type": "application/json"}, b"not json", 401),
]


@pytest.mark.parametrize(("case", "source", "headers", "body", "status"), ORDER, ids=[c[0] for c in ORDER])
async def test_order_of_checks(case: str, source: str, headers: dict[str, str], body: bytes, status: int,
                               small_client: httpx.AsyncClient) -> None:
    """source → content type → size → signature → JSON/schema → store."""
    assert (await post(small_client, source, body, headers)).status_code == status


async def test_schema_before_store(make_settings: Callable[..., Settings], clock: FrozenClock) -> None:
    """An invalid event is 400 even when Redis is down: nothing is tried against Redis for it."""
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(create_app(settings, clock=clock)) as client:
        response = await post(client, "shopfront", b"{}", signed("shopfront", b"{}", clock()))
    assert response.status_code == 400


@pytest.mark.parametrize("source", SOURCES)
async def test_redis_unreachable_is_503(source: str, make_settings: Callable[..., Settings],
                                        clock: FrozenClock) -> None:
    """Nothing listening where Redis should be: 503 unavailable, quickly, so the sender retries."""
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(create_app(settings, clock=clock)) as client:
        response = await post(client, source, BODY, signed(source, BODY, clock()))
    assert (response.status_code, response.json()) == (503, {"error": "unavailable"})


async def test_logs_one_line_per_request_without_secrets(settings: Settings, client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    """Each webhook request logs one line with source, event_id, status, outcome and duration; no secret,
    signature or header value appears in it."""
    headers = signed("shopfront", BODY, clock())
    with capture_logs() as logs:
        await post(client, "shopfront", BODY, headers)
        await post(client, "shopfront", BODY, headers)
        await post(client, "stripey", BODY, {"content-type": "application/json", "stripe-signature": "t=1,v1=ab"})
        await post(client, "nobody", BODY, headers)
        await post(client, "shopfront", b"[]", signed("shopfront", b"[]", clock()))
    lines = [line for line in logs if line["event"] == "webhook"]
    assert [(x["source"], x.get("event_id"), x["status"], x["outcome"]) for x in lines] == [
        ("shopfront", EVENT["id"], 202, "queued"),
        ("shopfront", EVENT["id"], 200, "duplicate"),
        ("stripey", None, 401, "invalid_signature"),
        ("nobody", None, 404, "unknown_source"),
        ("shopfront", None, 400, "invalid_event"),
    ]
    assert all(isinstance(x["duration_ms"], float) for x in lines)
    assert lines[0]["type"] == "purchase"
    text = repr(logs)
    for value in [*settings.secret_values(), headers["webhook-signature"], headers["webhook-id"], "t=1,v1=ab"]:
        assert value not in text


async def test_observers_see_every_result(settings: Settings, clock: FrozenClock) -> None:
    """Observers (the metrics seam) get each request's result; one that fails changes nothing."""
    seen: list[tuple[str, str | None, str, int]] = []

    def broken(result: Any) -> None:
        raise RuntimeError("observer bug")

    app = create_app(settings, clock=clock,
                     observers=[lambda r: seen.append((r.source, r.event_type, r.outcome, r.status)), broken])
    async with serve(app) as client:
        ok = await post(client, "shopfront", BODY, signed("shopfront", BODY, clock()))
        bad = await post(client, "shopfront", BODY, {"content-type": "application/json"})
    assert (ok.status_code, bad.status_code) == (202, 401)
    assert seen == [("shopfront", "purchase", "queued", 202), ("shopfront", None, "invalid_signature", 401)]


async def test_unexpected_error_is_503_not_500(settings: Settings, clock: FrozenClock) -> None:
    """A bug in the store is answered 503 unavailable (the sender retries), never a 500."""

    class Broken:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def accept(self, source: str, event: Any, body: bytes) -> bool:
            raise KeyError("bug")

    async with serve(create_app(settings, clock=clock, acceptor=Broken)) as client:
        response = await post(client, "shopfront", BODY, signed("shopfront", BODY, clock()))
    assert (response.status_code, response.json()) == (503, {"error": "unavailable"})


async def test_answers_are_orjson_bytes(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """Bodies are compact JSON, exactly as the contract spells them."""
    response = await post(client, "shopfront", BODY, signed("shopfront", BODY, clock()))
    assert response.content == orjson.dumps({"id": EVENT["id"], "status": "queued"})
    response = await post(client, "nobody", BODY, {})
    assert response.content == b'{"error":"unknown_source"}'


@pytest.mark.parametrize(
    ("method", "path", "fast"),
    [("POST", "/webhooks/shopfront", True), ("POST", "/webhooks/a.b-c_d", True), ("GET", "/webhooks/shopfront", False),
     ("POST", "/webhooks/", False), ("POST", "/webhooks/a/b", False), ("POST", "/webhooks", False),
     ("POST", "/admin/dead-letters", False)],
)
def test_fast_path_takes_what_the_route_would_match(method: str, path: str, fast: bool) -> None:
    assert is_webhook({"type": "http", "method": method, "path": path}) is fast


async def test_route_and_fast_path_answer_alike(settings: Settings, clock: FrozenClock, redis_client: aredis.Redis,
                                                namespace: str) -> None:
    """Through Starlette's route (when the fast path does not take a request) a webhook is handled the same."""
    app = create_app(settings, clock=clock)
    app.user_middleware.clear()  # Starlette's routing only
    async with serve(app) as client:
        body = dumps(sample_event(id="evt_route"))
        response = await post(client, "shopfront", body, signed("shopfront", body, clock()))
        assert (response.status_code, response.json()) == (202, {"id": "evt_route", "status": "queued"})
        response = await post(client, "nowhere", body, signed("shopfront", body, clock()))
        assert (response.status_code, response.json()) == (404, {"error": "unknown_source"})
    assert await redis_client.zcard(Keys(namespace).queue) == 1
