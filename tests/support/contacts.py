"""Many contacts for load and ordering tests, and what rule 8 says each one's state must end as."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cli.samples import numbered_contact, sample_event
from sandbox.config import SANDBOX_SEGMENTS

MEMBERSHIP_TYPES = ("segment.join", "segment.leave", "contact.delete")


contact = numbered_contact


def event_of(event_type: str, at: float, event_id: str, person: int | None) -> dict[str, Any]:
    """A sample event of `event_type` at `at` about person `person` (events without a contact ignore it)."""
    event = sample_event(event_type, at, event_id)
    if "contact" in event and person is not None:
        event["contact"] = contact(person)
    return event


def expected_members(events: Iterable[dict[str, Any]]) -> set[str]:
    """Emails that must end in the sample segment: those whose latest join / leave / erasure (by occurred_at,
    then by the order given, which is the order of acceptance) is a join."""
    latest: dict[str, tuple[str, int, str]] = {}
    for order, event in enumerate(events):
        if event["type"] in MEMBERSHIP_TYPES:
            email = event["contact"]["email"]
            key = (event["occurred_at"], order, event["type"])
            if email not in latest or key[:2] > latest[email][:2]:
                latest[email] = key
    return {email for email, (_, _, kind) in latest.items() if kind == "segment.join"}


def personaclick_members(state: dict[str, Any], segment: str = "vip") -> set[str]:
    """Emails of the profiles in the sandbox's PersonaClick segment that the event segment `segment` maps to."""
    pc = state["personaclick"]
    wanted = SANDBOX_SEGMENTS[segment]
    members = next(s["members"] for s in pc["segments"] if s["id"] == wanted)
    emails = {p["id"]: p.get("email") for p in pc["profiles"]}
    return {emails[m] for m in members if emails.get(m)}
