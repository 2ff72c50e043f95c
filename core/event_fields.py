"""The rules of SPEC section 4's field types, written once for both validators of `core.events`.

`core.events` holds the schema as pydantic models (the authority, and the one that names every bad field), and
`core.fast_events` as msgspec structs (the hot path: it only says yes or no, in one compiled pass). Both take
their patterns, bounds and real-date checks from here, so that a rule changed here changes in both; a test runs
every case of the event tests through both and fails on any disagreement.
"""

from __future__ import annotations

import re
from datetime import date, datetime

MAX_CENTS = 2**53 - 1  # the largest integer every JSON consumer (including JavaScript vendors) reads exactly
MAX_ENTITY_ID = 256
MAX_NAME = 1024
MAX_FREQUENCY = 10_000

ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SLUG = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
PHONE = re.compile(r"\+?[0-9(][0-9 ().-]{1,30}[0-9]")
CURRENCY = re.compile(r"[A-Za-z]{3}")

PATTERNS: dict[str, tuple[re.Pattern[str], str, int]] = {
    "event_id": (ID, "must be 1-128 characters of A-Z a-z 0-9 . _ : -", 128),
    "slug": (SLUG, "must be a snake_case slug, e.g. too_expensive", 64),
    "email": (EMAIL, "must be an email address", 256),
    "phone": (PHONE, "must be a phone number, e.g. +4400114527199", 32),
    "currency": (CURRENCY, "must be a three-letter currency code", 3),
}
"""Pattern-checked strings: the pattern (matched whole), the problem named when it does not match, max length."""


def anchored(pattern: re.Pattern[str]) -> str:
    """The pattern as one that matches only the whole string under `re.search` (msgspec's way of matching)."""
    return rf"\A(?:{pattern.pattern})\Z"


DATE_LIKE = re.compile(rf"{DATE.pattern}|{RFC3339.pattern}")
"""A date or a time: the two cannot be confused, a date is exactly 10 characters and a time at least 20."""


def real_time(value: str) -> bool:
    """Whether a string of the RFC3339 pattern names a real time (no 25:00, no February 30). The pattern puts a
    `Z` only at the end, and `fromisoformat` reads an upper-case one (and the offsets) as `parse_rfc3339` does."""
    try:
        datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
    except ValueError:
        return False
    return True


def real_day(value: str) -> bool:
    """Whether a string of the DATE pattern names a real day."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def real_date_or_time(value: str) -> bool:
    return real_day(value) if len(value) == 10 else real_time(value)


def timestamp(value: str) -> str:
    if not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-11-24T10:00:00Z")
    if not real_time(value):
        raise ValueError("is not a real time")
    return value


def day(value: str) -> str:
    if not DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    if not real_day(value):
        raise ValueError("is not a real date")
    return value


def date_or_timestamp(value: str) -> str:
    return day(value) if len(value) == 10 else timestamp(value)
