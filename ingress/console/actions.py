"""What the console changes, each through the admin API's own objects: log in and out, replay one dead
letter, purge one (after its confirmation page, pages.purge_page), and bulk replay (a dry run first, then the
run and its progress). Every POST has passed the CSRF and origin checks before it gets here (routes.screen)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ingress.console.auth import log_in as start_session
from ingress.console.auth import logged_in, safe_next, token_matches
from ingress.console.forms import Filters, checked
from ingress.console.pages import choices, no_letter
from ingress.console.render import message, render

if TYPE_CHECKING:
    from ingress.admin import Admin
    from ingress.console import Console

SAMPLE = 10
"""Dead letters listed by a bulk replay's dry run."""


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


async def login_page(request: Request, console: Console, admin: Admin) -> Response:
    target = safe_next(request.query_params.get("next"), "/console/")
    if logged_in(request.session):
        return see_other(target)
    return render(console.templates, request, "login.html", {"next": target, "wrong": False})


async def log_in(request: Request, console: Console, admin: Admin) -> Response:
    form = await request.form()
    target = safe_next(str(form.get("next") or ""), "/console/")
    given = form.get("token")
    if not isinstance(given, str) or not token_matches(given, console.admin_token):
        return render(console.templates, request, "login.html", {"next": target, "wrong": True}, status=401)
    start_session(request.session)
    return see_other(target)


async def log_out(request: Request, console: Console, admin: Admin) -> Response:
    request.session.clear()
    return see_other("/console/login")


async def replay_one(request: Request, console: Console, admin: Admin) -> Response:
    dl_id = request.path_params["id"]
    force = checked(await request.form(), "force")
    letter = await admin.dead_letters.get(dl_id)
    if letter is None or not await admin.dead_letters.replay(dl_id, force=force):
        return no_letter(console, request, dl_id)
    query = urlencode({"replayed": dl_id})
    return see_other(f"/console/events/{quote(letter['source'])}/{quote(letter['event_id'])}?{query}")


async def purge(request: Request, console: Console, admin: Admin) -> Response:
    dl_id = request.path_params["id"]
    if not await admin.dead_letters.delete(dl_id):
        return no_letter(console, request, dl_id)
    return see_other(f"/console/dead-letters?{urlencode({'purged': dl_id})}")


async def bulk_page(request: Request, console: Console, admin: Admin) -> Response:
    """The filter form; with `dry_run`, how many dead letters match now, a sample, and the confirm form."""
    params = request.query_params
    filters = Filters.read(params)
    force = checked(params, "force")
    context: dict[str, Any] = {**choices(console), "filters": filters, "force": force, "dry_run": False,
                               "problems": filters.problems, "count": 0, "sample": []}
    if filters.problems:
        return render(console.templates, request, "replay.html", context, status=400)
    if checked(params, "dry_run"):
        count, sample = 0, []
        async for letter in admin.dead_letters.iterate(filters.filter):
            count += 1
            if len(sample) < SAMPLE:
                sample.append(letter)
        context.update(dry_run=True, count=count, sample=sample)
    return render(console.templates, request, "replay.html", context)


async def bulk_start(request: Request, console: Console, admin: Admin) -> Response:
    form = await request.form()
    filters = Filters.read(form)
    if filters.problems:
        return message(console.templates, request, 400, "Bulk replay", *filters.problems, "Nothing was replayed.")
    force = checked(form, "force")
    letters = [letter async for letter in admin.dead_letters.iterate(filters.filter)]
    run = admin.replays.start(letters, force=force)
    return see_other(f"/console/replay/{run.id}?{filters.query()}")


async def bulk_progress(request: Request, console: Console, admin: Admin) -> Response:
    """A run's progress; the page refreshes its progress part (htmx) until the run has finished."""
    run = admin.replays.get(request.path_params["run_id"])
    if run is None:
        return message(console.templates, request, 404, "No such bulk replay",
                       "This ingress process knows of no such run: it finished long ago, or another process "
                       "of the fleet (or one since restarted) ran it.")
    name = "_replay_progress.html" if request.headers.get("hx-request") else "replay_run.html"
    return render(console.templates, request, name, {"run": run, "filters": Filters.read(request.query_params)})
