"""Fixtures for the console's browser tests: Debian's Chromium driven by Playwright (one browser per module),
the real ingress served by uvicorn on a free loopback port (one per test, on the test's own Redis namespace),
and helpers to seed dead letters and run async code from these sync tests.

Chromium is installed with apt-get when it is missing and this runs as root; where it cannot be had, or the
playwright package is missing, every browser test is skipped with the reason. Playwright never downloads a
browser of its own here (`executable_path` is Debian's).
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aredis
import uvicorn

from cli.samples import sample_event
from config.settings import Settings
from core.clock import FrozenClock
from core.idempotency import idempotency_key
from ingress.app import create_app
from store.calls import CallState
from store.dead_letters import DeadLetterStore, dead_letter_record, new_id
from store.intake import Intake
from store.keys import Keys
from tests.support.redis_server import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]
TOKEN = "admin-token-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_795_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def chromium_or_reason() -> str | None:
    """None when Chromium is there (installing it with apt-get as root if needed), else why it is not."""
    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{CHROMIUM} is missing and cannot be installed here (apt-get install chromium needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=900, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            return f"{CHROMIUM} is missing and `{' '.join(command)}` failed: {exc}"
    return None if os.path.exists(CHROMIUM) else f"apt-get installed no {CHROMIUM}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = chromium_or_reason()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests skipped: the playwright package is not installed (pip install -e '.[dev]')")
    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield launched
        launched.close()


class ConsoleServer:
    """The whole ingress app (lifespan and all) served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, settings: Settings, clock: FrozenClock) -> None:
        self.settings = settings
        self.app = create_app(settings, clock=clock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on", ws="none", loop="asyncio", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"console-{self.port}", daemon=True)

    def __enter__(self) -> ConsoleServer:
        self.thread.start()
        for _ in range(2000):  # bounded wait for startup
            if self.server.started or not self.thread.is_alive():
                break
            self.thread.join(0.005)
        if not self.server.started:
            raise RuntimeError("the ingress did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=10)


@pytest.fixture
def vendor_settings(make_settings: Callable[..., Settings], sandbox: Any) -> Settings:
    return make_settings(vendors=sandbox.vendor_tables())


@pytest.fixture
def server(vendor_settings: Settings) -> Iterator[ConsoleServer]:
    with ConsoleServer(vendor_settings, FrozenClock(T0 + 7200)) as served:
        yield served


class PageLog:
    """Everything a page did that a test may assert on: each request's URL, dialogs, console errors."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def console(self, kind: str, text: str) -> None:
        # Chromium reports every 4xx page as a failed resource; the tests that get one assert on it themselves
        if kind == "error" and not text.startswith("Failed to load resource: the server responded"):
            self.errors.append(text)

    def hosts(self) -> set[str]:
        return {urlsplit(url).hostname or url for url in self.requests}


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: Any, server: ConsoleServer, page_log: PageLog) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the test's server; afterwards, nothing was loaded from
    anywhere but 127.0.0.1, no dialog opened and no console error (a CSP violation would be one)."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    opened.on("request", lambda request: page_log.requests.append(request.url))
    opened.on("dialog", lambda dialog: (page_log.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("console", lambda msg: page_log.console(msg.type, msg.text))
    yield opened
    context.close()
    assert page_log.hosts() <= {"127.0.0.1"}, page_log.requests
    assert page_log.dialogs == []
    assert page_log.errors == []


def run_async(coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    """Run a coroutine to the end in a thread of its own (Playwright's sync API owns this thread's loop)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{coro} did not finish within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


Letter = tuple[dict[str, Any], CallState]


def letter(i: int, *, vendor: str = "segmetrics", operation: str = "upsert_contact",
           event: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> Letter:
    """Dead letter number i (a minute apart, oldest first) and the call state it was made from."""
    at = T0 + 60 * i
    # a copy: cli.samples shares its contact and order dicts between the events it makes
    event = copy.deepcopy(event or sample_event("purchase" if i % 2 else "signup", at, f"evt_{i:03d}"))
    failure = error or {"class": "permanent", "status": 422, "message": "contact rejected", "body": '{"ok":false}'}
    state = CallState().failed(failure, at, next_at=None)
    record = dead_letter_record(dl_id=new_id(at), source="shopfront", event=event, vendor=vendor,
                                operation=operation, state=state,
                                idempotency_key=idempotency_key("shopfront", event["id"], vendor, operation))
    return record, state


async def store_letters(settings: Settings, letters: list[Letter]) -> list[dict[str, Any]]:
    """Store dead letters as a worker would (the store's own atomic write)."""
    client = aredis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.namespace)
    store = DeadLetterStore(client, keys, Intake(client, keys, settings.delivery))
    try:
        async with client.pipeline(transaction=False) as pipe:
            for record, state in letters:
                script_keys, args = store.put_args(record, state)
                await store.put_script(keys=script_keys, args=args, client=pipe)
            await pipe.execute()
    finally:
        await client.aclose()
    return [record for record, _ in letters]


def put_letters(settings: Settings, letters: list[Letter]) -> list[dict[str, Any]]:
    """`store_letters` from a sync (browser) test."""
    return run_async(store_letters(settings, letters))  # type: ignore[no-any-return]


def log_in(page: Any, token: str = TOKEN) -> None:
    page.goto("/console/login")
    page.fill("#token", token)
    page.click("button[type=submit]")


@pytest.fixture
def shoot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any, str], None]:
    """`shoot(page, name)`: a full-page PNG of the screen. `SLUICE_SCREENSHOTS=docs/console` writes them where
    the README shows them; otherwise they go to a temporary folder (taken all the same, so they keep working)."""
    folder = os.environ.get("SLUICE_SCREENSHOTS")
    target = (ROOT / folder) if folder else tmp_path_factory.mktemp("screens")
    target.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(target / f"{name}.png"), full_page=True, animations="disabled")

    return take
