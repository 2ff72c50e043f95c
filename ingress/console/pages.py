"""The console's screens that only read: the overview, dead letters (filtered, paged), one dead letter, one
event with each of its calls (refreshing itself while a call is still pending or retrying)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.routing import EVENT_TYPES, VENDORS
from ingress.console.chart import calls_chart
from ingress.console.figures import OUTCOMES, read_fleet
from ingress.console.forms import PAGE_SIZE, Filters, Page, find_problems
from ingress.console.render import message, render
from store.calls import Ledger
from store.events import event_view
from store.keys import Keys

if TYPE_CHECKING:
    from ingress.admin import Admin
    from ingress.console import Console

UNSETTLED = ("pending", "retrying")
"""Call states that may still change by themselves: the event page refreshes while any call is in one."""


async def overview(request: Request, console: Console, admin: Admin) -> Response:
    now = console.clock()
    fleet = await read_fleet(admin.redis, admin.keys, now)
    since, last_hour = console.history.last_hour(now, fleet.calls)
    outcomes = [*OUTCOMES, *sorted(set(last_hour) - set(OUTCOMES))]
    return render(console.templates, request, "overview.html", {
        "fleet": fleet, "since": since, "last_hour": last_hour, "outcomes": outcomes, "now": now,
        "chart": calls_chart(console.history.per_minute(now, fleet.calls), now),
        "sources": [(name, fleet.accepted.get(name)) for name in sorted(console.settings.sources)],
    })


def choices(console: Console) -> dict[str, Any]:
    """What the filter form offers: every vendor, event type and configured source."""
    return {"vendors": VENDORS, "types": EVENT_TYPES, "sources": sorted(console.settings.sources)}


async def dead_letters(request: Request, console: Console, admin: Admin) -> Response:
    filters, page = Filters.read(request.query_params), Page.read(request.query_params)
    context: dict[str, Any] = {**choices(console), "filters": filters, "page": page, "items": [], "next": None,
                               "first": None, "purged": request.query_params.get("purged")}
    problems = filters.problems + page.problems
    if problems:
        return render(console.templates, request, "dead_letters.html", {**context, "problems": problems}, 400)
    items, next_cursor = await admin.dead_letters.page(filters.filter, limit=page.limit, cursor=page.cursor)
    limit = None if page.limit == PAGE_SIZE else str(page.limit)
    return render(console.templates, request, "dead_letters.html", {
        **context, "problems": [], "items": items,
        "next": filters.query(limit=limit, cursor=next_cursor) if next_cursor else None,
        "first": filters.query(limit=limit) if page.cursor else None,
    })


def no_letter(console: Console, request: Request, dl_id: str) -> Response:
    return message(console.templates, request, 404, "No such dead letter",
                   f"There is no dead letter {dl_id} (any more): it may have been replayed or purged.")


async def letter_page(request: Request, console: Console, admin: Admin, template: str) -> Response:
    dl_id = request.path_params["id"]
    letter = await admin.dead_letters.get(dl_id)
    if letter is None:
        return no_letter(console, request, dl_id)
    return render(console.templates, request, template, {
        "letter": letter, "error": letter.get("error") or {},
    })


async def dead_letter(request: Request, console: Console, admin: Admin) -> Response:
    return await letter_page(request, console, admin, "dead_letter.html")


async def purge_page(request: Request, console: Console, admin: Admin) -> Response:
    """Purging asks first: this page, whose form posts the purge."""
    return await letter_page(request, console, admin, "purge.html")


async def find_event(request: Request, console: Console, admin: Admin) -> Response:
    source = (request.query_params.get("source") or "").strip()
    event_id = (request.query_params.get("id") or "").strip()
    problems = find_problems(source, event_id)
    if problems:
        return message(console.templates, request, 400, "Find an event", *problems)
    return RedirectResponse(f"/console/events/{quote(source)}/{quote(event_id)}", status_code=303)


async def next_tries(redis: Redis, keys: Keys, source: str, event_id: str) -> dict[str, float | None]:
    """When each call of an event is tried next (the ledger's `next_at`; the event view does not carry it)."""
    raw = await redis.hgetall(keys.calls(source, event_id))
    return {name: state.next_at for name, state in Ledger.parse(raw).states.items()}


async def calls_context(console: Console, admin: Admin, source: str, event_id: str) -> dict[str, Any] | None:
    view = await event_view(admin.redis, admin.keys, console.settings.route_table, source, event_id)
    if view is None:
        return None
    schedule = await next_tries(admin.redis, admin.keys, source, event_id)
    calls = [{**call, "next_at": call.get("next_at", schedule.get(f"{call['vendor']}.{call['operation']}"))}
             for call in view["calls"]]
    return {"source": source, "event_id": event_id, "event": view["event"], "calls": calls,
            "polling": any(call["status"] in UNSETTLED for call in calls)}


def unknown_event(console: Console, request: Request, source: str, event_id: str) -> Response:
    return message(console.templates, request, 404, "No such event",
                   f"There is no event {event_id} from {source}: never accepted, or older than the event's "
                   "time to live.")


async def event(request: Request, console: Console, admin: Admin) -> Response:
    source, event_id = request.path_params["source"], request.path_params["event_id"]
    context = await calls_context(console, admin, source, event_id)
    if context is None:
        return unknown_event(console, request, source, event_id)
    return render(console.templates, request, "event.html",
                  {**context, "replayed": request.query_params.get("replayed")})


async def event_calls(request: Request, console: Console, admin: Admin) -> Response:
    """The calls table alone, for the event page's refresh."""
    source, event_id = request.path_params["source"], request.path_params["event_id"]
    context = await calls_context(console, admin, source, event_id)
    if context is None:
        return unknown_event(console, request, source, event_id)
    return render(console.templates, request, "_calls.html", context)
