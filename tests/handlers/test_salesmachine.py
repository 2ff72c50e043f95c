"""Every Salesmachine operation through `Vendors.perform`, over HTTP against the sandbox."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.errors import PermanentError
from handlers.registry import Vendors
from tests.handlers import samples
from tests.handlers.conftest import KEY
from tests.support.sandbox import SandboxServer


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_signup_row(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    ev = samples.signup()
    for op in ("upsert_account", "upsert_contact", "track_event"):
        await perform("salesmachine", op, ev)
    store = sandbox.state.salesmachine
    assert store.accounts["acc_7"]["data"] == {"name": "Acme", "domain": "acme.io"}
    assert store.contacts["cus_42"]["data"] == {
        "plan": "pro", "name": "Ada Lovelace", "email": "ada@example.com", "account_uid": "acc_7",
    }
    assert store.events == [
        {"contact_uid": "cus_42", "event_uid": "signup", "params": {"display_name": "Signup", "account_uid": "acc_7"}}
    ]
    reqs = sandbox.state.requests
    assert [r.path for r in reqs] == [
        "/salesmachine/v1/account", "/salesmachine/v1/contact", "/salesmachine/v1/track/event",
    ]
    for req in reqs:  # auth both ways at once
        assert req.query == "api_token=salesmachine-sandbox-token"
        assert req.headers["authorization"] == basic("salesmachine-sandbox-token", "salesmachine-sandbox-secret")
        assert req.idempotency_key == KEY and req.status == 200


async def test_churn_row(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("salesmachine", "upsert_contact", samples.churn())
    await perform("salesmachine", "track_event", samples.churn())
    data = sandbox.state.salesmachine.contacts["cus_42"]["data"]
    assert (data["churn_date"], data["churn_mrr"], data["churn_reason"], data["churn_comment"]) == (
        1795514400, 19, "too_expensive", "Price went up",
    )
    assert sandbox.state.requests[0].body.count('"churn_mrr":19') == 1  # a JSON number
    assert sandbox.state.salesmachine.events[0]["event_uid"] == "churn"


@pytest.mark.parametrize(
    ("ev", "uid"),
    [
        (samples.purchase(), "purchase"),
        (samples.refund(), "refund"),
        (samples.segment_join(), "segment_join"),
        (samples.segment_leave(), "segment_leave"),
    ],
)
async def test_track_event(perform: Callable[..., Any], sandbox: SandboxServer, ev: dict, uid: str) -> None:
    await perform("salesmachine", "track_event", ev)
    [event] = sandbox.state.salesmachine.events
    assert event["event_uid"] == uid and event["params"]["account_uid"] == "acc_7"


async def test_empty_secret_sends_token_colon(make_vendors: Callable[..., Vendors], sandbox: SandboxServer) -> None:
    await make_vendors(salesmachine={"api_secret": ""}).perform(
        "salesmachine", "track_event", samples.signup(), idempotency_key=KEY, timeout=2
    )
    assert sandbox.state.requests[0].headers["authorization"] == basic("salesmachine-sandbox-token", "")


async def _seed(perform: Callable[..., Any]) -> None:
    await perform("salesmachine", "upsert_account", samples.signup())
    await perform("salesmachine", "upsert_contact", samples.signup())
    other = samples.signup()
    other["contact"]["id"] = "cus_43"
    await perform("salesmachine", "upsert_contact", other)


async def test_v2_list_and_get(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await _seed(perform)
    await perform("salesmachine", "list_contacts", samples.signup())
    await perform("salesmachine", "list_accounts", samples.signup())
    await perform("salesmachine", "get_contact", samples.signup())
    await perform("salesmachine", "get_account", samples.signup())
    v2 = [r for r in sandbox.state.requests if "/v2/" in r.path]
    internal = sandbox.state.salesmachine.contacts["cus_42"]["id"]
    account = sandbox.state.salesmachine.accounts["acc_7"]["id"]
    assert [(r.method, r.path) for r in v2] == [
        ("GET", "/salesmachine/v2/contacts"),
        ("GET", "/salesmachine/v2/accounts"),
        ("GET", "/salesmachine/v2/contacts"),  # lookup by unique_id
        ("GET", f"/salesmachine/v2/contacts/{internal}"),
        ("GET", "/salesmachine/v2/accounts"),
        ("GET", f"/salesmachine/v2/accounts/{account}"),
    ]
    assert v2[2].query_pairs() == [("unique_id", "cus_42"), ("limit", "100")]
    for req in v2:
        assert req.headers["authorization"] == basic("salesmachine-sandbox-token-v2", "")
        assert "api_token" not in req.query and req.status == 200


async def test_v2_get_of_an_unknown_contact_is_permanent(perform: Callable[..., Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        await perform("salesmachine", "get_contact", samples.signup())
    assert caught.value.status == 404


async def test_v2_delete_contact_and_account(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await _seed(perform)
    await perform("salesmachine", "delete_contact", samples.contact_delete())
    assert set(sandbox.state.salesmachine.contacts) == {"cus_43"}
    await perform("salesmachine", "delete_contact", samples.contact_delete())  # absent: done, no DELETE
    deletes = [r for r in sandbox.state.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].status == 200
    await perform("salesmachine", "delete_account", samples.contact_delete())
    assert sandbox.state.salesmachine.accounts == {}


async def test_v2_lookup_follows_pages_when_the_server_ignores_the_filter(
    vendor_settings: Callable[..., Any],
) -> None:
    """A server that ignores `unique_id` still works: the client pages on with `starting_after` and only
    trusts rows whose unique_id matches. (A mock transport: the sandbox honours the filter.)"""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        if request.method == "DELETE":
            return httpx.Response(200, json={"id": "id_150", "object": "contact", "deleted": True})
        after = request.url.params.get("starting_after")
        start = 0 if after is None else int(after.removeprefix("id_")) + 1
        rows = [{"object": "contact", "id": f"id_{n:03}", "unique_id": f"other_{n}"} for n in range(start, 200)]
        rows = [r if r["id"] != "id_150" else {**r, "unique_id": "cus_42"} for r in rows][:100]
        return httpx.Response(200, json={"object": "contact.list", "data": rows, "has_more": start + 100 < 200})

    async with httpx.MockTransport(answer) as client:
        vendors = Vendors(vendor_settings(), client)
        await vendors.perform("salesmachine", "delete_contact", samples.contact_delete(), idempotency_key=KEY,
                              timeout=2)
    assert seen[0].endswith("?unique_id=cus_42&limit=100")
    assert seen[1].endswith("?unique_id=cus_42&limit=100&starting_after=id_099")
    assert seen[2] == "DELETE /salesmachine/v2/contacts/id_150?"
    assert len(seen) == 3


async def test_v2_not_configured(make_vendors: Callable[..., Vendors]) -> None:
    vendors = make_vendors(salesmachine={"api_token_v2": ""})
    for op in ("list_contacts", "get_contact", "delete_contact", "list_accounts", "get_account", "delete_account"):
        assert not vendors.is_configured("salesmachine", op)
        with pytest.raises(PermanentError, match="api_token_v2"):
            await vendors.perform("salesmachine", op, samples.contact_delete(), idempotency_key=KEY, timeout=2)
    for op in ("upsert_contact", "upsert_account", "track_event"):
        assert vendors.is_configured("salesmachine", op)


@pytest.mark.parametrize(
    ("patch", "op", "status"),
    [
        ({"api_token": "wrong-token"}, "track_event", 401),
        ({"api_secret": "wrong-secret"}, "track_event", 401),
        ({"api_token_v2": "wrong-v2"}, "list_contacts", 401),
    ],
)
async def test_bad_credentials_are_permanent(
    make_vendors: Callable[..., Vendors], patch: dict[str, str], op: str, status: int
) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_vendors(salesmachine=patch).perform("salesmachine", op, samples.signup(), idempotency_key=KEY,
                                                        timeout=2)
    assert caught.value.status == status
    assert "wrong api key" in caught.value.message
    text = str(caught.value.as_dict())
    assert not any(secret in text for secret in patch.values())
