"""Reading the console's query strings and forms: the admin API's dead-letter filters, cursors and page sizes,
and the "find an event" box. Each problem becomes a sentence for the page (answered 400), never a 500."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ingress.admin import parse_limit
from store.dead_letters import Filter, parse_cursor

FILTER_FIELDS = ("vendor", "type", "source", "since", "until")
PAGE_SIZE = 50
_SOURCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class Filters:
    """The filter fields as typed (to fill the form in again and build links), and the parsed `Filter`."""

    values: dict[str, str]
    filter: Filter = field(default_factory=Filter)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, params: Mapping[str, Any]) -> Filters:
        values = {name: str(params.get(name) or "").strip() for name in FILTER_FIELDS}
        try:
            return cls(values, Filter.parse(values))
        except ValueError as exc:
            return cls(values, problems=[_sentence(str(exc))])

    def query(self, **extra: str | None) -> str:
        """This filter (and `extra`) as a query string, empty fields left out."""
        pairs = {**{k: v for k, v in self.values.items() if v}, **{k: v for k, v in extra.items() if v}}
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return any(self.values.values())


@dataclass
class Page:
    limit: int = PAGE_SIZE
    cursor: str | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, params: Mapping[str, Any]) -> Page:
        page = cls()
        try:
            page.limit = parse_limit(params.get("limit")) if params.get("limit") else PAGE_SIZE
        except ValueError as exc:
            page.problems.append(_sentence(str(exc)))
        cursor = params.get("cursor") or None
        if cursor is not None:
            try:
                parse_cursor(cursor)
                page.cursor = cursor
            except ValueError as exc:
                page.problems.append(_sentence(str(exc)))
        return page


def find_problems(source: str, event_id: str) -> list[str]:
    """What is wrong with a source and event id typed into the find box."""
    problems = []
    if not _SOURCE.fullmatch(source):
        problems.append("Source: 1-64 characters of A-Z a-z 0-9 _ -.")
    if not _EVENT_ID.fullmatch(event_id):
        problems.append("Event id: 1-128 characters of A-Z a-z 0-9 . _ : -.")
    return problems


def checked(form: Mapping[str, Any], name: str) -> bool:
    """An HTML checkbox: present (any value but empty) when ticked."""
    return bool(form.get(name))


def _sentence(problem: str) -> str:
    """`since: not an RFC 3339 time` -> `Since: not an RFC 3339 time.` (the API's wording, for people)."""
    name, sep, rest = problem.partition(": ")
    text = f"{name.capitalize()}: {rest}" if sep else problem
    return text if text.endswith(".") else f"{text}."
