"""Every PersonaClick operation through `Vendors.perform`, over HTTP against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.errors import PermanentError
from handlers.registry import Vendors
from tests.handlers import samples
from tests.handlers.conftest import KEY
from tests.support.sandbox import SandboxServer

SHOP = "5a1b2c3d4e5f60718293a4b5c6d7e8"


def members(sandbox: SandboxServer, segment_id: int) -> set[int]:
    return set(sandbox.state.personaclick.segments[segment_id]["members"])


async def test_add_and_remove(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("personaclick", "add_to_segment", samples.segment_join())
    await perform("personaclick", "add_to_segment", samples.segment_join())  # idempotent
    assert len(members(sandbox, 100500)) == 1
    req = sandbox.state.requests[0]
    assert (req.method, req.path, req.status) == ("POST", "/personaclick/segments/add", 200)
    assert req.headers["content-type"] == "application/json" and req.query == ""
    assert req.json() == {"shop_id": SHOP, "shop_secret": "personaclick-sandbox-secret", "segment_id": 100500,
                          "email": "ada@example.com", "phone": "+4400114527199"}

    await perform("personaclick", "remove_from_segment", samples.segment_leave())
    await perform("personaclick", "remove_from_segment", samples.segment_leave())  # not in it: no error
    assert members(sandbox, 100500) == set()
    assert [r.status for r in sandbox.state.requests] == [200, 200, 200, 200]


async def test_numeric_segment_ids_pass_through(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("personaclick", "add_to_segment", samples.segment_join("100501"))
    assert len(members(sandbox, 100501)) == 1


async def test_unmapped_segment_is_permanent_and_sends_nothing(
    perform: Callable[..., Any], sandbox: SandboxServer
) -> None:
    with pytest.raises(PermanentError, match="gold"):
        await perform("personaclick", "add_to_segment", samples.segment_join("gold"))
    assert sandbox.state.requests == []


async def test_unknown_segment_is_permanent(perform: Callable[..., Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        await perform("personaclick", "add_to_segment", samples.segment_join("999"))
    assert caught.value.status == 404
    assert caught.value.message.endswith("Segment not found")  # read from the body's `message`


async def test_list_segments(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("personaclick", "add_to_segment", samples.segment_join())
    await perform("personaclick", "list_segments", samples.signup())
    req = sandbox.state.requests[-1]
    assert (req.method, req.path, req.body, req.status) == ("GET", "/personaclick/segments/get", "", 200)
    assert dict(req.query_pairs())["shop_secret"] == "personaclick-sandbox-secret"  # GET: in the query


async def test_purge_profile(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("personaclick", "add_to_segment", samples.segment_join())
    await perform("personaclick", "purge_profile", samples.contact_delete())
    assert sandbox.state.personaclick.profiles == {} and members(sandbox, 100500) == set()
    await perform("personaclick", "purge_profile", samples.contact_delete())  # "Profile not found": done
    purges = sandbox.state.requests_for("personaclick", method="DELETE")
    assert [r.status for r in purges] == [200, 404]
    assert purges[0].json()["email"] == "ada@example.com"


@pytest.mark.parametrize(
    ("patch", "status", "message"),
    [
        ({"shop_secret": "wrong-secret"}, 403, "shop_secret"),
        ({"shop_id": "0d42fd8b713d0752776ca589cc0056"}, 404, "Shop not found"),
        ({"shop_id": "not-hex"}, 422, "malformed"),
    ],
)
async def test_bad_credentials_are_permanent(
    make_vendors: Callable[..., Vendors], patch: dict[str, str], status: int, message: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_vendors(personaclick=patch).perform(
            "personaclick", "add_to_segment", samples.segment_join(), idempotency_key=KEY, timeout=2
        )
    assert caught.value.status == status and message in caught.value.message
    text = str(caught.value.as_dict())
    assert "wrong-secret" not in text and "personaclick-sandbox-secret" not in text
