"""The console over HTTP through the real app (no browser): no token no console, the headers of every page,
the session cookie, CSRF and origin checks, bad input as clear 400 pages, Redis down as a 503 page, and the
`force` guard."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import itsdangerous
import orjson
import pytest

from ingress.app import create_app
from ingress.console.auth import SESSION_COOKIE, session_key
from ingress.console.headers import CSP
from store.keys import Keys
from tests.console.conftest import TOKEN, letter, store_letters
from tests.ingress.conftest import Lifespan
from tests.support.redis_server import free_port


@contextlib.asynccontextmanager
async def served(settings: Any, base_url: str = "http://ingress") -> AsyncIterator[tuple[httpx.AsyncClient, dict]]:
    """The app with its lifespan run; the client and the lifespan state (to reach `admin`)."""
    async with Lifespan(create_app(settings)) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
            yield client, app.state


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


async def log_in(client: httpx.AsyncClient) -> str:
    """Log in; the new session's CSRF token."""
    login = await client.get("/console/login")
    answer = await client.post("/console/login", data={"csrf": csrf_of(login), "token": TOKEN, "next": "/console/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    return csrf_of(await client.get("/console/dead-letters"))


@pytest.fixture
async def console(settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict]]:
    async with served(settings) as pair:
        yield pair


async def test_no_admin_token_means_no_console(make_settings) -> None:
    async with served(make_settings(ingress={"admin_token": ""})) as (client, _):
        for method, path in [("GET", "/console/"), ("GET", "/console/login"), ("POST", "/console/login"),
                             ("GET", "/console/static/console.css"), ("GET", "/console/dead-letters")]:
            response = await client.request(method, path)
            assert response.status_code == 404 and response.json() == {"error": "not_found"}, path


async def test_every_console_answer_has_the_strict_headers(console, settings) -> None:
    client, _ = console
    answers = [await client.get("/console/"), await client.get("/console/login")]
    await log_in(client)
    for path in ["/console/", "/console/dead-letters", "/console/dead-letters?since=x", "/console/dead-letters/dl_x",
                 "/console/events/shopfront/nope", "/console/replay?dry_run=1", "/console/static/console.css"]:
        answers.append(await client.get(path))
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.url
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP and "default-src 'self'" in CSP


async def test_pages_hold_no_inline_script_or_style(console) -> None:
    client, _ = console
    await log_in(client)
    for path in ["/console/", "/console/dead-letters", "/console/replay", "/console/login"]:
        html = (await client.get(path)).text
        assert re.findall(r"<script(?![^>]*\ssrc=)", html) == [] and " style=" not in html and "<style" not in html


async def test_the_session_cookie_is_signed_httponly_strict_and_never_holds_the_token(console) -> None:
    client, _ = console
    login = await client.get("/console/login")
    answer = await client.post("/console/login", data={"csrf": csrf_of(login), "token": TOKEN})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags and "secure" not in flags
    value = cookie.split(";")[0].split("=", 1)[1]
    payload = itsdangerous.TimestampSigner(session_key(TOKEN)).unsign(value)
    session = orjson.loads(base64.b64decode(payload))
    assert session["auth"] is True and TOKEN not in cookie and TOKEN not in session_key(TOKEN)


async def test_a_session_signed_with_another_key_is_no_session(console) -> None:
    """A cookie forged with the token itself (or any key but the derived one) is ignored: back to log in."""
    client, _ = console
    forged = itsdangerous.TimestampSigner(TOKEN).sign(base64.b64encode(b'{"auth": true, "csrf": "x"}')).decode()
    client.cookies.set(SESSION_COOKIE, forged, domain="ingress", path="/console")
    answer = await client.get("/console/dead-letters")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")


async def test_over_https_the_session_cookie_is_secure(settings) -> None:
    async with served(settings, base_url="https://ingress") as (client, _):
        login = await client.get("/console/login")
        assert "; secure" in login.headers["set-cookie"]


async def test_wrong_token_is_refused_with_the_form_again(console) -> None:
    client, _ = console
    login = await client.get("/console/login")
    for token in ["", "admin-token-s3cre", f"{TOKEN} ", "Bearer " + TOKEN]:
        answer = await client.post("/console/login", data={"csrf": csrf_of(login), "token": token})
        assert answer.status_code == 401 and "That is not the admin token." in answer.text
    assert (await client.get("/console/")).status_code == 303


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
async def test_state_changes_from_another_origin_are_refused(console, settings, headers) -> None:
    client, _ = console
    csrf = await log_in(client)
    [target] = await store_letters(settings, [letter(1)])
    for path in [f"/console/dead-letters/{target['id']}/replay", f"/console/dead-letters/{target['id']}/purge",
                 "/console/replay", "/console/logout"]:
        answer = await client.post(path, data={"csrf": csrf}, headers=headers)
        assert answer.status_code == 403 and "Nothing was changed" in answer.text, path
    assert (await client.get(f"/console/dead-letters/{target['id']}")).status_code == 200


async def test_same_origin_with_the_token_is_allowed(console, settings) -> None:
    client, _ = console
    csrf = await log_in(client)
    record, state = letter(1)
    await store_letters(settings, [(record, state)])
    answer = await client.post(f"/console/dead-letters/{record['id']}/purge", data={"csrf": csrf},
                               headers={"Origin": "http://ingress", "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/dead-letters?purged={record['id']}"


@pytest.mark.parametrize("data", [{}, {"csrf": ""}, {"csrf": "guess"}])
async def test_state_changes_without_the_csrf_token_are_refused(console, settings, data) -> None:
    client, _ = console
    await log_in(client)
    record, state = letter(1)
    await store_letters(settings, [(record, state)])
    answer = await client.post(f"/console/dead-letters/{record['id']}/replay", data=data)
    assert answer.status_code == 403
    assert (await client.get(f"/console/dead-letters/{record['id']}")).status_code == 200


async def test_the_login_form_needs_its_csrf_token_too(console) -> None:
    client, _ = console
    await client.get("/console/login")
    answer = await client.post("/console/login", data={"token": TOKEN})
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "auth")


async def test_a_huge_form_is_not_read(console) -> None:
    client, _ = console
    answer = await client.post("/console/login", content=b"token=" + b"x" * 100_000,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


async def test_without_a_session_posts_are_refused_and_fragments_redirect(console) -> None:
    client, _ = console
    answer = await client.post("/console/dead-letters/dl_x/replay", data={"csrf": "x"})
    assert answer.status_code == 403 and "Log in again" in answer.text
    answer = await client.get("/console/events/shopfront/e/calls", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["hx-redirect"] == "/console/login?next=%2Fconsole%2Fevents%2Fshopfront%2Fe%2Fcalls"


@pytest.mark.parametrize(("path", "problem"), [
    ("/console/dead-letters?since=yesterday", "Since: not an RFC 3339 time with an offset."),
    ("/console/dead-letters?until=2026-11-24T10:00:00", "Until: not an RFC 3339 time with an offset."),
    ("/console/dead-letters?limit=0", "Limit: a whole number from 1 to 1000."),
    ("/console/dead-letters?limit=ten", "Limit: a whole number from 1 to 1000."),
    ("/console/dead-letters?cursor=garbage", "Cursor: not a cursor returned by this API."),
    ("/console/replay?dry_run=1&since=soon", "Since: not an RFC 3339 time with an offset."),
    ("/console/events?source=shopfront&id=", "Event id: 1-128 characters"),
    ("/console/events?source=shop%20front&id=evt_1", "Source: 1-64 characters"),
])
async def test_bad_input_is_a_400_page_that_says_what_is_wrong(console, path, problem) -> None:
    client, _ = console
    await log_in(client)
    answer = await client.get(path)
    assert answer.status_code == 400 and problem in answer.text
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/console/dead-letters/dl_nope", "/console/dead-letters/dl_nope/purge",
                                  "/console/events/shopfront/nope", "/console/replay/0123456789abcdef"])
async def test_unknown_ids_are_404_pages(console, path) -> None:
    client, _ = console
    await log_in(client)
    answer = await client.get(path)
    assert answer.status_code == 404 and "No such" in answer.text


async def test_redis_down_is_a_503_page(make_settings) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with served(settings) as (client, _):
        login = await client.get("/console/login")  # logging in needs no Redis
        await client.post("/console/login", data={"csrf": csrf_of(login), "token": TOKEN})
        for path in ["/console/", "/console/dead-letters", "/console/events/shopfront/e"]:
            answer = await client.get(path)
            assert answer.status_code == 503 and "Redis is unavailable" in answer.text, path


async def test_a_forced_replay_reaches_the_ledger_as_forced(console, settings, redis_client) -> None:
    """The `force` box: the replayed call is marked to bypass the ordering rule (SPEC rule 8)."""
    from store.calls import CallState
    from store.keys import Keys

    client, _ = console
    csrf = await log_in(client)
    record, call_state = letter(1)
    await store_letters(settings, [(record, call_state)])
    answer = await client.post(f"/console/dead-letters/{record['id']}/replay", data={"csrf": csrf, "force": "1"})
    assert answer.status_code == 303
    raw = await redis_client.hget(Keys(settings.namespace).calls(record["source"], record["event_id"]),
                                  f"{record['vendor']}.{record['operation']}")
    assert CallState.loads(raw).forced


async def test_bulk_replay_over_http_matches_the_api(console, settings, redis_client, namespace) -> None:
    client, state = console
    csrf = await log_in(client)
    await store_letters(settings, [letter(i, vendor="infinity" if i % 2 else "segmetrics") for i in range(7)])
    api = await client.post("/admin/dead-letters/replay", json={"vendor": "infinity", "dry_run": True},
                            headers={"Authorization": f"Bearer {TOKEN}"})
    dry = await client.get("/console/replay?vendor=infinity&dry_run=1")
    assert f"{api.json()['would_replay']} dead letters match" in dry.text
    started = await client.post("/console/replay", data={"csrf": csrf, "vendor": "infinity"})
    assert started.status_code == 303 and started.headers["location"].endswith("?vendor=infinity")
    await state["admin"].replays.close()  # the run in the background, awaited
    run = await client.get(started.headers["location"])
    assert run.status_code == 200 and "Done: 3 dead letters replayed." in run.text
    assert "hx-trigger" not in run.text  # a finished run's page stops refreshing
    assert await redis_client.zcard(Keys(namespace).queue) == 3
