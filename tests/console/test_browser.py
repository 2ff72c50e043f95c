"""The operator console in a real browser (Debian's Chromium through Playwright) against the real ingress,
Redis, vendor sandbox and a burst worker: log in and out, filters, paging, escaping, replay, bulk replay,
purge, CSRF, and that a page loads nothing from anywhere but the ingress itself."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis

from store.keys import Keys
from tests.console.conftest import TOKEN, T0, letter, log_in, put_letters, run_async
from tests.ingress.conftest import signed
from tests.support.worker import run_burst

expect: Any = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect


def rows(page: Any) -> list[str]:
    """The dead-letter ids listed on the page."""
    return page.locator("table.list tbody td:first-child a").all_inner_texts()


def test_log_in_deep_link_wrong_token_and_log_out(page, server, shoot) -> None:
    """A deep link without a session goes to the login page and back after it; a wrong token is refused;
    logging out ends the session."""
    page.goto("/console/dead-letters?vendor=salesmachine")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    shoot(page, "1-login")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    expect(page).to_have_url(re.compile(r"/console/login$"))  # the form posted here and was answered here
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/console/dead-letters?vendor=salesmachine")
    expect(page.locator("#f-vendor")).to_have_value("salesmachine")
    cookie = next(c for c in page.context.cookies() if c["name"] == "sluice_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/console/login")
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2F$"))


def test_filter_by_vendor_survives_a_reload(page, server, vendor_settings, shoot) -> None:
    letters = put_letters(vendor_settings, [letter(i, vendor="salesmachine" if i % 3 == 0 else "segmetrics",
                                                   operation="track_event" if i % 3 == 0 else "upsert_contact")
                                            for i in range(9)])
    log_in(page)
    page.goto("/console/dead-letters")
    assert len(rows(page)) == 9
    page.select_option("#f-vendor", "salesmachine")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"vendor=salesmachine"))
    wanted = [x["id"] for x in letters if x["vendor"] == "salesmachine"]
    expect(page.locator("table.list tbody tr")).to_have_count(len(wanted))
    assert rows(page) == wanted
    page.reload()
    expect(page.locator("#f-vendor")).to_have_value("salesmachine")
    assert rows(page) == wanted
    page.goto("/console/dead-letters")
    shoot(page, "3-dead-letters")


def test_paging_over_60_letters_has_no_gaps_or_repeats(page, server, vendor_settings) -> None:
    letters = put_letters(vendor_settings, [letter(i) for i in range(60)])
    log_in(page)
    page.goto("/console/dead-letters")
    seen = rows(page)
    assert len(seen) == 50
    page.get_by_role("link", name="next page »").click()
    expect(page.locator("table.list tbody tr")).to_have_count(10)
    seen += rows(page)
    expect(page.get_by_role("link", name="next page »")).to_have_count(0)
    assert seen == [x["id"] for x in letters]


def test_bad_filters_get_a_clear_message(page, server) -> None:
    log_in(page)
    response = page.goto("/console/dead-letters?since=yesterday&limit=5000")
    assert response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Since: not an RFC 3339 time with an offset.")
    expect(page.get_by_role("alert")).to_contain_text("Limit: a whole number from 1 to 1000.")


def test_an_event_holding_script_is_shown_as_text(page, server, vendor_settings, page_log, shoot) -> None:
    """Event and vendor body are escaped: the `<script>` shows as text and never runs (no dialog fires)."""
    hostile = "<script>alert('event')</script>"
    sample = letter(1)[0]["event"]
    event = {**sample, "contact": {**sample["contact"], "first_name": hostile}}  # the sample's dicts are shared
    error = {"class": "permanent", "status": 400, "message": "<b>bad</b> request",
             "body": "<img src=x onerror=alert('body')><script>alert('body')</script>"}
    [stored] = put_letters(vendor_settings, [letter(1, event=event, error=error)])
    log_in(page)
    page.goto(f"/console/dead-letters/{stored['id']}")
    expect(page.locator("pre.body").nth(0)).to_have_text(error["body"])
    expect(page.locator("pre.body").nth(1)).to_contain_text(hostile)
    expect(page.get_by_text("<b>bad</b> request")).to_be_visible()
    assert page.locator("main script, main img").count() == 0
    assert page_log.dialogs == []
    shoot(page, "4-dead-letter")


def test_replay_one_and_watch_the_call_succeed(page, server, vendor_settings, sandbox, shoot) -> None:
    """A real webhook, a vendor that refuses the call once (dead letter), replay from the console, a worker
    run: the event page (refreshing itself) shows the call succeeded."""
    sandbox.state.inject("segmetrics", 422, times=1, path_contains="/contact")
    body = orjson.dumps(
        {"id": "evt_replay", "type": "signup", "occurred_at": "2026-11-24T10:00:00Z",
         "contact": {"id": "cus_1", "email": "ada@example.com"}, "data": {}})
    with server.api() as api:
        assert api.post("/webhooks/shopfront", content=body, headers=signed("shopfront", body, T0 + 7200)
                        ).status_code == 202
        run_async(run_burst(vendor_settings))
        [dead] = api.get("/admin/dead-letters").json()["items"]
    log_in(page)
    page.goto(f"/console/dead-letters/{dead['id']}")
    page.get_by_role("button", name="Replay").click()
    expect(page).to_have_url(re.compile(rf"/console/events/shopfront/evt_replay\?replayed={dead['id']}"))
    call = page.locator(f"tr[data-call='{dead['vendor']}.{dead['operation']}'] .state")
    expect(call).to_have_text("pending")
    expect(page.locator("#calls[hx-trigger]")).to_have_count(1)  # refreshing while a call is pending
    shoot(page, "5-event-replayed")
    run_async(run_burst(vendor_settings))
    expect(call).to_have_text("succeeded")  # the page refreshed itself
    expect(page.locator("#calls[hx-trigger]")).to_have_count(0)  # and stopped once every call was final
    assert page.locator(".state").all_inner_texts() == ["succeeded"] * page.locator(".state").count()


def test_bulk_replay_dry_run_cancel_and_confirm(page, server, vendor_settings, shoot) -> None:
    put_letters(vendor_settings, [letter(i, vendor="salesmachine" if i < 14 else "segmetrics",
                                         operation="track_event" if i < 14 else "upsert_contact")
                                  for i in range(20)])
    with server.api() as api:
        would = api.post("/admin/dead-letters/replay", json={"vendor": "salesmachine", "dry_run": True}
                         ).json()["would_replay"]
        assert would == 14
        log_in(page)
        page.goto("/console/replay")
        page.select_option("#f-vendor", "salesmachine")
        page.get_by_role("button", name="Dry run").click()
        expect(page.locator("#match-count")).to_have_text(f"{would} dead letters match")
        shoot(page, "6-bulk-replay-dry-run")
        page.get_by_role("link", name="Cancel").click()
        expect(page).to_have_url(re.compile(r"/console/dead-letters\?vendor=salesmachine$"))
        assert len(api.get("/admin/dead-letters").json()["items"]) == 20

        page.goto("/console/replay?vendor=salesmachine&dry_run=1")
        page.get_by_role("button", name=f"Replay {would} dead letters").click()
        expect(page.locator("#replay-result")).to_contain_text(f"Done: {would} dead letters replayed")
        shoot(page, "7-bulk-replay-done")
        left = api.get("/admin/dead-letters").json()["items"]
        assert len(left) == 6 and {x["vendor"] for x in left} == {"segmetrics"}
    assert run_async(queue_depth(vendor_settings)) == would


async def queue_depth(settings: Any) -> int:
    client = aredis.Redis.from_url(settings.redis_url)
    try:
        return int(await client.zcard(Keys(settings.namespace).queue))
    finally:
        await client.aclose()


def test_purge_after_confirmation(page, server, vendor_settings, shoot) -> None:
    first, second = put_letters(vendor_settings, [letter(1), letter(2)])
    log_in(page)
    page.goto(f"/console/dead-letters/{first['id']}")
    page.get_by_role("link", name="Purge…").click()
    shoot(page, "8-purge-confirm")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{server.url}/console/dead-letters/{first['id']}")
    page.get_by_role("link", name="Purge…").click()
    page.get_by_role("button", name="Purge it").click()
    expect(page.get_by_role("status")).to_have_text(f"Dead letter {first['id']} purged.")
    assert rows(page) == [second["id"]]
    with server.api() as api:
        assert api.get(f"/admin/dead-letters/{first['id']}").status_code == 404


def test_replay_without_csrf_or_from_another_origin_is_refused(page, server, vendor_settings) -> None:
    """403 and nothing changes: no CSRF token; the right token but another Origin; a page on another origin
    (same site, so the SameSite cookie still goes along) posting the form with the right token."""
    [target] = put_letters(vendor_settings, [letter(1)])
    log_in(page)
    page.goto(f"/console/dead-letters/{target['id']}")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    url = f"{server.url}/console/dead-letters/{target['id']}/replay"
    assert page.request.post(url, form={}).status == 403
    assert page.request.post(url, form={"csrf": "forged"}).status == 403
    refused = page.request.post(url, form={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert refused.status == 403 and "another origin" in refused.text()

    other = "http://127.0.0.1:9/"  # another origin of the same site; answered by the browser, no server there
    page.route(other, lambda route: route.fulfill(content_type="text/html", body=(
        f'<form method="post" action="{url}"><input name="csrf" value="{csrf}"><button>go</button></form>')))
    page.goto(other)
    with page.expect_response(url) as answer:
        page.click("button")
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("Nothing was changed")
    with server.api() as api:
        assert api.get(f"/admin/dead-letters/{target['id']}").status_code == 200
    assert run_async(queue_depth(vendor_settings)) == 0


def test_overview_shows_the_fleet(page, server, vendor_settings, shoot) -> None:
    """Dead letters per vendor, queue depth, calls by outcome (from minute readings of the workers' counters),
    the last accepted event per source, the find box; every request the pages made went to 127.0.0.1."""
    put_letters(vendor_settings, [letter(i, vendor=v) for i, v in enumerate(["segmetrics"] * 3 + ["infinity"] * 2)])
    run_async(feed_readings(server, vendor_settings))
    body = orjson.dumps({"id": "evt_live", "type": "signup", "occurred_at": "2026-11-24T10:00:00Z",
                         "contact": {"id": "c", "email": "a@example.com"}, "data": {}})
    with server.api() as api:
        assert api.post("/webhooks/shopfront", content=body, headers=signed("shopfront", body, T0 + 7200)
                        ).status_code == 202
    log_in(page)
    expect(page).to_have_url(f"{server.url}/console/")
    expect(page.locator("table.compact").nth(0)).to_contain_text("segmetrics")
    assert page.locator("a[href='/console/dead-letters?vendor=infinity']").inner_text() == "infinity"
    expect(page.locator(".card", has_text="Queue").locator(".figure")).to_have_text("1")
    calls = page.locator(".card", has_text="Vendor calls, last hour")
    # the readings from an hour ago to now: 61 increments of 8 + minute % 5, of minute % 3, of minute % 2
    expect(calls.locator("tr", has_text="succeeded").locator("td.num")).to_have_text("608")
    expect(calls.locator("tr", has_text="retrying").locator("td.num")).to_have_text("60")
    expect(calls.locator("tr", has_text="dead").locator("td.num")).to_have_text("30")
    assert page.locator("svg.chart rect").count() >= 60
    expect(page.locator("a[href='/console/events/shopfront/evt_live']")).to_be_visible()
    shoot(page, "2-overview")
    page.fill("#find-source", "shopfront")
    page.fill("#find-id", "evt_live")
    page.get_by_role("button", name="Show the event").click()
    expect(page).to_have_url(f"{server.url}/console/events/shopfront/evt_live")
    expect(page.locator(".state").first).to_have_text("pending")


async def feed_readings(server: Any, settings: Any) -> None:
    """An hour of the workers' counters going up (HINCRBY as their pipelines do), read once a minute."""
    client = aredis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.namespace)
    history = server.app.state.console.history
    now = T0 + 7200
    try:
        for minute in range(61):
            await history.sample(client, keys, now - 3600 + 60 * minute)
            await client.hincrby(keys.metrics, "call|segmetrics|upsert_contact|succeeded", 8 + minute % 5)
            await client.hincrby(keys.metrics, "call|salesmachine|track_event|retrying", minute % 3)
            await client.hincrby(keys.metrics, "call|salesmachine|track_event|dead", 1 if minute % 2 else 0)
    finally:
        await client.aclose()
