"""PersonaClick (REES46 white label): static segment membership and profile erasure.

Decisions (vendors.md): JSON bodies with `shop_id` and `shop_secret` in the body (the query string for a
GET); `segment_id` is the event segment id mapped through `[vendors.personaclick] segments`, or the id
itself when it is all digits, else a PermanentError (segments cannot be created through the API). Error
messages are read from `message` or `payload.message`.

The person is named by every identifier the event has (email and phone), as in PersonaClick's own example.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from config.settings import PersonaClickSettings
from core.clock import Clock, system_clock
from core.errors import PermanentError
from handlers.base import Call, VendorClient, message_from_json, not_understood
from handlers.fields import Event, compact, contact, need

# -- pure payload builders ----------------------------------------------------------------------------


def segment_id(event: Event, segments: Mapping[str, int]) -> int:
    """The PersonaClick segment_id of the event's segment: the configured mapping first, then a numeric
    id as is; anything else is a config gap, hence permanent."""
    ref = str(need(event, "data.segment.id"))
    if ref in segments:
        return int(segments[ref])
    if ref.isascii() and ref.isdigit():
        return int(ref)
    raise PermanentError(
        f"personaclick: segment {ref!r} has no segment_id; add it to [vendors.personaclick] segments"
    )


def identity(event: Event) -> dict[str, str]:
    person = contact(event)
    ident = compact({"email": person.get("email") or None, "phone": person.get("phone") or None})
    if not ident:
        raise PermanentError("personaclick needs the contact's email or phone")
    return {k: str(v) for k, v in ident.items()}


def auth_params(shop_id: str, shop_secret: str) -> dict[str, str]:
    return {"shop_id": shop_id, "shop_secret": shop_secret}


def membership_body(event: Event, shop_id: str, shop_secret: str, segments: Mapping[str, int]) -> dict[str, Any]:
    """`POST /segments/add` and `/segments/remove`."""
    return {**auth_params(shop_id, shop_secret), "segment_id": segment_id(event, segments), **identity(event)}


def purge_body(event: Event, shop_id: str, shop_secret: str) -> dict[str, Any]:
    """`DELETE /profile/purge`."""
    return {**auth_params(shop_id, shop_secret), **identity(event)}


# -- the client -----------------------------------------------------------------------------------------


class PersonaClickClient(VendorClient):
    vendor = "personaclick"

    def __init__(
        self, cfg: PersonaClickSettings, http: httpx.AsyncBaseTransport, *, clock: Clock = system_clock
    ) -> None:
        self.shop_id = cfg.shop_id
        self._secret = cfg.shop_secret.get_secret_value()
        self.segments = dict(cfg.segments)
        super().__init__(http, cfg.base_url, secrets=(self._secret,), clock=clock)

    def error_detail(self, text: str) -> str | None:
        return message_from_json(text, "message", "payload.message", "error")

    async def _post(self, call: Call, path: str, body: Mapping[str, Any]) -> None:
        response = await self.fetch(call, "POST", path, json=body)
        self.json_object(response, success=True)

    async def add_to_segment(self, event: Event, call: Call) -> None:
        await self._post(call, "/segments/add", membership_body(event, self.shop_id, self._secret, self.segments))

    async def remove_from_segment(self, event: Event, call: Call) -> None:
        await self._post(
            call, "/segments/remove", membership_body(event, self.shop_id, self._secret, self.segments)
        )

    async def list_segments(self, event: Event, call: Call) -> None:
        """The segments the event's contact is in: a bare array `[{"id": 313, "type": "static"}]`."""
        params = {**auth_params(self.shop_id, self._secret), **identity(event)}
        response = await self.fetch(call, "GET", "/segments/get", params=params)
        body = self.json_body(response)
        if not isinstance(body, list) or not all(isinstance(row, dict) and "id" in row for row in body):
            raise not_understood(self.vendor, response, "not an array of segments", self.secrets)

    async def purge_profile(self, event: Event, call: Call) -> None:
        """Erase the person; an unknown profile (404 "Profile not found") is done."""
        response = await self.send(
            call, "DELETE", "/profile/purge", json=purge_body(event, self.shop_id, self._secret), missing_ok=True
        )
        if response is not None:
            self.json_object(response, success=True)
