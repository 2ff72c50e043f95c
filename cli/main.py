"""`sluice`: inspect and replay dead letters, look at an event, send a signed sample event, show the vendor
requests an event would make.

Every command reads the config from SLUICE_CONFIG and talks to Redis directly (`send` posts to the ingress;
`plan` needs no Redis and sends nothing).
Errors are one line on stderr and exit status 1 (2 for a bad config), never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import orjson
import redis.asyncio as aredis
import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import Progress
from rich.table import Column, Table

from cli.mask import Masker
from cli.plan import ASSUMED, dry_run, shown
from cli.samples import sample_event
from cli.signing import sign_headers
from config.settings import Settings, load_or_exit
from core.clock import system_clock
from core.errors import ConfigError
from core.events import InvalidEvent, validate_event
from core.routing import EVENT_TYPES
from store.connection import ClusterRefused, cli_redis, refuse_cluster, where
from store.dead_letters import DeadLetterStore, Filter
from store.events import event_view
from store.intake import Intake
from store.keys import Keys

T = TypeVar("T")

app = typer.Typer(help="Operate sluice: dead letters, events, sample webhooks, routing dry runs.",
                  no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
dlq = typer.Typer(help="Inspect, replay and purge dead letters.", no_args_is_help=True)
events = typer.Typer(help="Look at accepted events.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")
app.add_typer(events, name="events")

out = Console()
err = Console(stderr=True, soft_wrap=True)

Vendor = Annotated[str | None, typer.Option(help="Only this vendor.")]
Type = Annotated[str | None, typer.Option("--type", help="Only this event type.")]
Source = Annotated[str | None, typer.Option(help="Only this source.")]
Since = Annotated[str | None, typer.Option(help="last_failed_at at or after this RFC 3339 time.")]
Until = Annotated[str | None, typer.Option(help="last_failed_at at or before this RFC 3339 time.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only count what would be done.")]


def fail(message: str) -> None:
    err.print(f"sluice: {message}", highlight=False, markup=False)
    raise typer.Exit(1)


def config_error(exc: ConfigError) -> NoReturn:
    err.print(f"sluice: config error: {exc}", highlight=False, markup=False)
    raise typer.Exit(2)


def run(work: Callable[[Settings, aredis.Redis], Awaitable[T]]) -> T:
    """Load settings, open Redis, run `work`, and turn Redis and input errors into one line."""
    settings = load_or_exit()
    try:
        client = cli_redis(settings)
    except ConfigError as exc:
        config_error(exc)

    async def main() -> T:
        try:
            await refuse_cluster(client, settings)
            return await work(settings, client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except ClusterRefused as exc:
        config_error(exc)
    except RedisError as exc:
        fail(f"cannot reach Redis at {where(settings)}: {exc}")
    except ValueError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def store_for(settings: Settings, client: aredis.Redis) -> DeadLetterStore:
    keys = Keys(settings.namespace)
    return DeadLetterStore(client, keys, Intake(client, keys, settings.delivery))


def make_filter(vendor: str | None, type_: str | None, source: str | None, since: str | None,
                until: str | None) -> Filter:
    try:
        return Filter.parse({"vendor": vendor, "type": type_, "source": source, "since": since, "until": until})
    except ValueError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@dlq.command("list")
def dlq_list(vendor: Vendor = None, type_: Type = None, source: Source = None, since: Since = None,
             until: Until = None, limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
             cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
             as_json: Json = False) -> None:
    """List dead letters, oldest first."""
    flt = make_filter(vendor, type_, source, since, until)
    items, next_cursor = run(lambda s, r: store_for(s, r).page(flt, limit=limit, cursor=cursor))
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    table = Table("last failed", "source", "event", "type", "vendor.operation", "tries", "error")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=23))
    for dl in items:
        error = dl["error"] or {}
        table.add_row(dl["id"], dl["last_failed_at"], dl["source"], dl["event_id"], dl["event_type"],
                      f"{dl['vendor']}.{dl['operation']}", str(dl["attempts"]),
                      f"{error.get('status') or '-'} {error.get('message', '')}"[:60])
    out.print(table)
    if next_cursor:
        out.print(f"more: --cursor {next_cursor}", highlight=False)


@dlq.command("show")
def dlq_show(dl_id: str, as_json: Json = True) -> None:
    """Show one dead letter in full."""
    letter = run(lambda s, r: store_for(s, r).get(dl_id))
    if letter is None:
        fail(f"no dead letter {dl_id}")
    print_json(letter)


async def _bulk(store: DeadLetterStore, flt: Filter, dry_run: bool, action: str, show: bool,
                force: bool = False) -> int:
    letters = [letter async for letter in store.iterate(flt)]
    if dry_run or not letters:
        return len(letters)
    done = 0
    with Progress(console=err, disable=not show) as progress:
        task = progress.add_task(action, total=len(letters))
        for i in range(0, len(letters), 500):
            chunk = letters[i : i + 500]
            if action == "replay":
                done += await store.replay_batch(chunk, force=force)
            else:
                done += await store.delete_batch(chunk)
            progress.advance(task, len(chunk))
    return done


def _one_or_many(action: str, dl_id: str | None, flt: Filter, dry_run: bool, as_json: bool,
                 force: bool = False) -> None:
    async def work(s: Settings, r: aredis.Redis) -> int:
        store = store_for(s, r)
        if dl_id is None:
            return await _bulk(store, flt, dry_run, action, show=not as_json, force=force)
        if dry_run:
            return int(await store.get(dl_id) is not None)
        ok = await (store.replay(dl_id, force=force) if action == "replay" else store.delete(dl_id))
        if not ok:
            fail(f"no dead letter {dl_id}")
        return 1

    count = run(work)
    word = {"replay": "replayed", "purge": "purged"}[action]
    key = f"would_{action}" if dry_run else word
    if as_json:
        print_json({key: count})
    else:
        out.print(f"{'would ' + action if dry_run else word}: {count}", highlight=False)


@dlq.command("replay")
def dlq_replay(dl_id: Annotated[str | None, typer.Argument(help="One dead letter; omit to use the filters.")] = None,
               vendor: Vendor = None, type_: Type = None, source: Source = None, since: Since = None,
               until: Until = None, dry_run: DryRun = False, as_json: Json = False,
               force: Annotated[bool, typer.Option("--force", help="Send even if a later event superseded it "
                                                   "(SPEC rule 8).")] = False) -> None:
    """Queue dead letters again, with a fresh try count and the same idempotency key."""
    _one_or_many("replay", dl_id, make_filter(vendor, type_, source, since, until), dry_run, as_json, force)


@dlq.command("purge")
def dlq_purge(dl_id: Annotated[str | None, typer.Argument(help="One dead letter; omit to use the filters.")] = None,
              vendor: Vendor = None, type_: Type = None, source: Source = None, since: Since = None,
              until: Until = None, dry_run: DryRun = False, as_json: Json = False) -> None:
    """Delete dead letters for good."""
    _one_or_many("purge", dl_id, make_filter(vendor, type_, source, since, until), dry_run, as_json)


@events.command("show")
def events_show(source: str, event_id: str, as_json: Json = False) -> None:
    """An accepted event and the state of each of its vendor calls."""
    view = run(lambda s, r: event_view(r, Keys(s.namespace), s.route_table, source, event_id))
    if view is None:
        fail(f"no event {event_id} from source {source}")
    assert view is not None
    if as_json:
        print_json(view)
        return
    out.print(f"{source}/{event_id}: {view['event'].get('type')}", highlight=False)
    table = Table("vendor", "operation", "status", "tries", "last error / superseded by")
    for call in view["calls"]:
        error = call["last_error"] or {}
        detail = f"{error.get('status') or ''} {error.get('message', '')}".strip()
        if call.get("superseded_by"):
            detail = f"superseded by {call['superseded_by']}"
        table.add_row(call["vendor"], call["operation"], call["status"], str(call["attempts"]), detail)
    out.print(table)


@app.command("send")
def send(event_type: Annotated[str, typer.Argument(help="One of: " + ", ".join(EVENT_TYPES))],
         source: Annotated[str, typer.Option(help="The source to sign for (from the config).")],
         url: Annotated[str, typer.Option(help="The ingress base URL.")] = "http://127.0.0.1:8000",
         event_id: Annotated[str | None, typer.Option("--id", help="Event id (default: a new one).")] = None) -> None:
    """Build a sample event of TYPE, sign it as SOURCE's platform does, post it, print the answer."""
    settings = load_or_exit()
    if event_type not in EVENT_TYPES:
        fail(f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}")
    cfg = settings.sources.get(source)
    if cfg is None:
        fail(f"no source {source!r} in the config; configured: {', '.join(settings.sources) or 'none'}")
    assert cfg is not None
    now = system_clock()
    body = orjson.dumps(sample_event(event_type, now, event_id))
    headers = {"content-type": "application/json",
               **sign_headers(cfg.scheme, cfg.secrets[0].get_secret_value(), body, now)}
    target = f"{url.rstrip('/')}/webhooks/{source}"
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        fail(f"cannot post to {target}: {exc}")
    out.print(f"{response.status_code} {response.text}", highlight=False, markup=False)
    if response.status_code >= 300:
        raise typer.Exit(1)


def plan_source(settings: Settings, source: str | None) -> str:
    """The source the event is planned as coming from: the one given, or the only configured one."""
    configured = ", ".join(settings.sources) or "none"
    if source is None:
        if len(settings.sources) != 1:
            fail(f"say which source the event comes from with --source; configured: {configured}")
        return next(iter(settings.sources))
    if source not in settings.sources:
        fail(f"no source {source!r} in the config; configured: {configured}")
    return source


def read_event(settings: Settings, path: str, as_json: bool) -> dict[str, Any]:
    """The event of the file, checked as the ingress checks a body: its size, then the same validator (an
    invalid one gets the ingress's own `invalid_event` detail)."""
    try:
        with open(path, "rb") as fh:
            body = fh.read(settings.ingress.max_body_bytes + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    if len(body) > settings.ingress.max_body_bytes:
        fail(f"{path} is larger than [ingress] max_body_bytes ({settings.ingress.max_body_bytes}): payload_too_large")
    try:
        return validate_event(body)
    except InvalidEvent as exc:
        answer = {"error": "invalid_event", "detail": exc.details}
        if as_json:
            print_json(answer)
        fail(f"{path} is not a valid event: {orjson.dumps(answer).decode()}")
    raise AssertionError("unreachable")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def print_plan(event: dict[str, Any], source: str, calls: list[dict[str, Any]]) -> None:
    say = functools.partial(out.print, highlight=False, markup=False, soft_wrap=True)
    say(f"{event['type']} {event['id']} from {source}: {plural(len(calls), 'call')}; {ASSUMED}")
    for call in calls:
        head = f"\n{call['vendor']}.{call['operation']}"
        if call["outcome"] == "skipped":
            say(f"{head}: skipped, {call['reason']}")
            continue
        steps = call["requests"]
        say(f"{head}: {plural(len(steps), 'request')}")
        writes = not call["operation"].startswith(("list_", "get_"))  # the read operations are named so
        for n, request in enumerate(steps, start=1):
            lookup = " (a lookup: what follows depends on its answer)" if writes and request["method"] == "GET" else ""
            lines = [f"  {n}. {request['method']} {request['url']}{lookup}"]
            lines += [f"     {name}: {value}" for name, value in request["headers"].items()]
            if request["body"] is not None:
                lines.append(f"     {request['body']}")
            answer = request["assumed_answer"]
            lines.append(f"     -> assumed answer {answer['status']}: {answer['body'].strip()[:200] or '(empty)'}")
            say("\n".join(lines))
        if call["outcome"] == "fails":
            say(f"  fails: {call['reason']}")


@app.command("plan")
def plan_command(path: Annotated[str, typer.Argument(help="A file holding one event (JSON), as a platform posts it.")],
                 source: Annotated[str | None, typer.Option(help="The source it comes from (default: the only "
                                                                 "configured one).")] = None,
                 as_json: Json = False) -> None:
    """Show the vendor requests the configured routes would make for an event. Nothing is sent."""
    settings = load_or_exit()
    name = plan_source(settings, source)
    event = read_event(settings, path, as_json)
    calls = shown(asyncio.run(dry_run(settings, event, name)), Masker(settings.secret_values()))
    if as_json:
        print_json({"source": name, "event_id": event["id"], "type": event["type"], "assumed": ASSUMED,
                    "calls": calls})
    else:
        print_plan(event, name, calls)


def main() -> None:
    app()
