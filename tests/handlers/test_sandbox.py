"""Contract tests of the emulators: raw HTTP requests shaped like the vendors' documented examples (the
examples of vendors.md, carried here as data) get the documented answers. Plus the sandbox's own control
API, its duplicate counter and its stand-alone process."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from sandbox import SandboxState, create_sandbox_app, sandbox_vendor_tables
from tests.support.redis_server import free_port
from tests.support.sandbox import SandboxServer


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        yield http


# -- SegMetrics -----------------------------------------------------------------------------------------

SM = "/segmetrics/api/v1/1001/2002"
SM_AUTH = {"Authorization": "segmetrics-sandbox-key"}
DOC_CONTACT = {"contact_id": "249", "email": "joey@bloggs.com", "first_name": "Joey", "last_name": "Bloggs",
               "status": "active", "date_created": "2018-10-02 16:15:00", "custom_fields": {"shirt_size": "Medium"}}
DOC_INVOICE = {"email": "a@b.com", "id": "234115", "amount": 4500, "paid": 4500, "is_refunded": 0,
               "date_created": "2018-10-03 11:14:32",
               "items": [{"name": "Round Tuit", "product_id": "1556", "amount": 4000}]}


async def test_segmetrics_documented_contact_and_delete(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{SM}/contact", json=DOC_CONTACT, headers=SM_AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success" and body["contact"]["contact_id"] == "249"

    r = await client.post(f"{SM}/tags/add", json={"contact_id": 249, "tags": [3, 45, 8]}, headers=SM_AUTH)
    assert (r.status_code, r.json()) == (200, {"status": "success"})

    r = await client.delete(f"{SM}/contact/249", headers=SM_AUTH)
    assert r.json() == {"id": "249", "status": "success", "object": "contact", "deleted": True}
    r = await client.delete(f"{SM}/contact/249", headers=SM_AUTH)
    assert (r.status_code, r.json()) == (404, {"status": "error", "errors": ["not found"]})


async def test_segmetrics_contact_semantics(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    await client.post(f"{SM}/contact", json={**DOC_CONTACT, "tags": ["a", "b"]}, headers=SM_AUTH)
    await client.post(f"{SM}/contact", json={"contact_id": "249", "tags": ["c"],
                                             "custom_fields": {"shirt_size": None, "age": 3}}, headers=SM_AUTH)
    contact = sandbox.state.segmetrics.integration("2002").contacts["249"]
    assert contact["tags"] == ["c"]  # the tags field replaces
    assert contact["custom_fields"] == {"age": 3}  # merged, null deletes
    # a contact_id sent for a known email re-keys that contact
    await client.post(f"{SM}/contact", json={"contact_id": "250", "email": "joey@bloggs.com"}, headers=SM_AUTH)
    assert list(sandbox.state.segmetrics.integration("2002").contacts) == ["250"]


async def test_segmetrics_delete_by_email_takes_every_match(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    for cid in ("1", "2"):
        await client.post(f"{SM}/contact", json={"contact_id": cid, "email": "same@x.io"}, headers=SM_AUTH)
    r = await client.delete(f"{SM}/contact/same@x.io", headers=SM_AUTH)
    assert r.status_code == 200 and sandbox.state.segmetrics.integration("2002").contacts == {}


async def test_segmetrics_documented_invoice(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{SM}/invoice", json=DOC_INVOICE, headers=SM_AUTH)
    assert r.status_code == 200 and r.json()["status"] == "success"
    r = await client.delete(f"{SM}/invoice/234115", headers=SM_AUTH)
    assert r.json() == {"id": "234115", "status": "success", "object": "invoice", "deleted": True}


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        ("invoice", {k: v for k, v in DOC_INVOICE.items() if k != "id"}, ["missing 'id' field "]),
        ("invoice", {k: v for k, v in DOC_INVOICE.items() if k != "paid"}, ["missing 'paid' field "]),
        ("invoice", {**DOC_INVOICE, "amount": 45.0}, ["'amount' must be an integer amount in cents"]),
        ("invoice", {**DOC_INVOICE, "date_created": "2018-10-03T11:14:32Z"},
         ["invalid 'date_created' field: expected YYYY-MM-DD HH:MM:SS"]),
        ("subscription", {"id": "s", "email": "a@b.com", "amount": 100, "product_id": "p", "start_date": "2018-10-03",
                          "last_bill_date": "2018-10-03", "billing_cycle": "month"}, ["missing 'frequency' field "]),
        ("subscription", {"id": "s", "email": "a@b.com", "amount": 100, "product_id": "p", "start_date": "2018-10-03",
                          "last_bill_date": "2018-10-03", "billing_cycle": "fortnight", "frequency": 1},
         ["invalid 'billing_cycle' field: expected year, month, week or day"]),
        ("contact", {"first_name": "Nobody"}, ["missing 'contact_id' field "]),
        ("tags/add", {"email": "a@b.com"}, ["missing 'tags' field "]),
        ("ad/performance", {"ad": "1", "spend": 100}, ["missing 'date' field "]),
    ],
)
async def test_segmetrics_documented_400(client: httpx.AsyncClient, path: str, body: dict, errors: list[str]) -> None:
    r = await client.post(f"{SM}/{path}", json=body, headers=SM_AUTH)
    assert (r.status_code, r.json()) == (400, {"status": "error", "errors": errors})


async def test_segmetrics_auth(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer segmetrics-sandbox-key"}, {"Authorization": "nope"}):
        r = await client.post(f"{SM}/contact", json=DOC_CONTACT, headers=headers)
        assert (r.status_code, r.json()) == (401, {"status": "error", "errors": ["unauthorized"]})


# -- Salesmachine ---------------------------------------------------------------------------------------

TOKEN = {"api_token": "salesmachine-sandbox-token"}
DOC_SM_CONTACT = {"contact_uid": "123456", "params": {"email": "j@x.io", "name": "John Doe", "mrr": 99,
                                                     "account_uid": "78910"}}
DOC_SM_ACCOUNT = {"account_uid": "78910", "params": {"name": "Acme", "mrr": 999, "domain": "acme.io"}}
DOC_SM_EVENT = {"contact_uid": "123456", "event_uid": "user_registration",
                "params": {"account_uid": "78910", "display_name": "Registration"}}


async def test_salesmachine_documented_v1_calls(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    for path, body in (("contact", DOC_SM_CONTACT), ("account", DOC_SM_ACCOUNT), ("track/event", DOC_SM_EVENT)):
        r = await client.post(f"/salesmachine/v1/{path}", params=TOKEN, json=body)
        assert (r.status_code, r.json()) == (200, {"status": "success"})
    r = await client.post("/salesmachine/v1/batch", params=TOKEN,
                          json=[{"method": "event", **DOC_SM_EVENT}, {"method": "contact", **DOC_SM_CONTACT}])
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    assert [e["event_uid"] for e in sandbox.state.salesmachine.events] == ["user_registration"] * 2


@pytest.mark.parametrize(
    ("params", "auth", "status"),
    [
        (TOKEN, None, 200),
        ({}, ("salesmachine-sandbox-token", "salesmachine-sandbox-secret"), 200),
        ({}, ("salesmachine-sandbox-token", ""), 200),
        (TOKEN, ("salesmachine-sandbox-token", "salesmachine-sandbox-secret"), 200),
        ({}, None, 400),
        ({"api_token": "nope"}, None, 401),
        ({}, ("salesmachine-sandbox-token", "wrong"), 401),
        (TOKEN, ("other", ""), 401),
    ],
)
async def test_salesmachine_v1_auth(client: httpx.AsyncClient, params: dict, auth: tuple | None, status: int) -> None:
    headers = {"Authorization": basic(*auth)} if auth else {}
    r = await client.get("/salesmachine/v1/ping", params=params, headers=headers)
    assert r.status_code == status
    if status != 200:
        body = r.json()
        assert body["status"] == "error" and set(body) == {"status", "error", "code", "message"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 406, "not_acceptable"),
        (orjson.dumps({"params": {}}), 400, "missing_parameter"),
        (orjson.dumps({"contact_uid": "1", "event_uid": "User Registration"}), 400, "bad_request"),
        (orjson.dumps({"contact_uid": "1", "event_uid": "x", "params": {"mrr": "99"}}), 400, "bad_request"),
    ],
)
async def test_salesmachine_v1_errors(client: httpx.AsyncClient, body: bytes, status: int, code: str) -> None:
    r = await client.post("/salesmachine/v1/track/event", params=TOKEN, content=body,
                          headers={"content-type": "application/json"})
    assert r.status_code == status and r.json()["code"] == code


async def test_salesmachine_v2_contact_shape(client: httpx.AsyncClient) -> None:
    await client.post("/salesmachine/v1/account", params=TOKEN, json=DOC_SM_ACCOUNT)
    await client.post("/salesmachine/v1/contact", params=TOKEN, json=DOC_SM_CONTACT)
    for auth in (basic("salesmachine-sandbox-token-v2", ""), "Bearer salesmachine-sandbox-token-v2"):
        r = await client.get("/salesmachine/v2/contacts", headers={"Authorization": auth})
        assert r.status_code == 200
        listing = r.json()
        assert listing["object"] == "contact.list" and listing["has_more"] is False
    [contact] = listing["data"]
    # the documented get-contact example's keys
    assert set(contact) == {"object", "id", "unique_id", "created_at", "archived", "data", "salesmachine", "stage",
                            "accounts"}
    assert contact["object"] == "contact" and contact["unique_id"] == "123456" and contact["data"]["name"] == "John Doe"
    assert contact["accounts"]["object"] == "account.list" and len(contact["accounts"]["data"]) == 1
    auth_header = {"Authorization": basic("salesmachine-sandbox-token-v2", "")}
    r = await client.get(f"/salesmachine/v2/contacts/{contact['id']}", headers=auth_header)
    assert r.json() == contact
    r = await client.delete(f"/salesmachine/v2/contacts/{contact['id']}", headers=auth_header)
    assert r.json() == {"id": contact["id"], "object": "contact", "deleted": True}
    r = await client.delete(f"/salesmachine/v2/contacts/{contact['id']}", headers=auth_header)
    assert r.status_code == 404
    r = await client.get("/salesmachine/v2/accounts", headers={"Authorization": basic("wrong", "")})
    assert r.status_code == 401


async def test_salesmachine_v2_pages(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    for n in range(25):
        sandbox.state.salesmachine.upsert_contact(f"c{n}", {})
    auth = {"Authorization": "Bearer salesmachine-sandbox-token-v2"}
    first = (await client.get("/salesmachine/v2/contacts", headers=auth)).json()
    assert len(first["data"]) == 10 and first["has_more"] is True
    rest = (await client.get("/salesmachine/v2/contacts", headers=auth,
                             params={"limit": 100, "starting_after": first["data"][-1]["id"]})).json()
    assert len(rest["data"]) == 15 and rest["has_more"] is False


# -- PersonaClick ---------------------------------------------------------------------------------------

SHOP = {"shop_id": "5a1b2c3d4e5f60718293a4b5c6d7e8", "shop_secret": "personaclick-sandbox-secret"}
PERSON = {"email": "ada@example.com", "phone": "+4400114527199"}


async def test_personaclick_documented_segment_calls(client: httpx.AsyncClient) -> None:
    r = await client.post("/personaclick/segments/add", json={**SHOP, **PERSON, "segment_id": 100500})
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    # the older form encoding is accepted too
    r = await client.post("/personaclick/segments/add", data={**SHOP, "email": PERSON["email"], "segment_id": "100501"})
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    r = await client.get("/personaclick/segments/get", params={**SHOP, "email": PERSON["email"]})
    assert r.json() == [{"id": 100500, "type": "static"}, {"id": 100501, "type": "static"}]
    r = await client.get("/personaclick/segments/includes", params={**SHOP, "phone": PERSON["phone"],
                                                                    "segment_id": 100500})
    assert r.json() is True
    r = await client.post("/personaclick/segments/remove", json={**SHOP, **PERSON, "segment_id": 100500})
    assert r.json() == {"status": "success"}
    r = await client.post("/personaclick/segments/includes", json={**SHOP, **PERSON, "segment_id": 100500})
    assert r.json() is False


async def test_personaclick_profiles(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    r = await client.post("/personaclick/profile/set", json={**SHOP, **PERSON, "first_name": "Ada"})
    assert r.json() == {"status": "success"}
    assert [p["first_name"] for p in sandbox.state.personaclick.profiles.values()] == ["Ada"]
    r = await client.request("DELETE", "/personaclick/profile/purge", json={**SHOP, "email": PERSON["email"]})
    assert r.json() == {"status": "success"}
    r = await client.request("DELETE", "/personaclick/profile/purge", json={**SHOP, "email": PERSON["email"]})
    assert (r.status_code, r.json()) == (404, {"status": "error", "message": "Profile not found"})


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"shop_secret": SHOP["shop_secret"]}, 401, "shop_id is required"),
        ({"shop_id": "xyz", "shop_secret": SHOP["shop_secret"]}, 422, "shop_id is malformed"),
        ({"shop_id": "0d42fd8b713d0752776ca589cc0056", "shop_secret": "x"}, 404, "Shop not found"),
        ({"shop_id": SHOP["shop_id"]}, 403, "request was unsuccessful: shop_secret is missing or wrong"),
        ({**SHOP, "segment_id": 999}, 404, "Segment not found"),
        ({**SHOP}, 400, "segment_id is required"),
    ],
)
async def test_personaclick_errors(client: httpx.AsyncClient, params: dict, status: int, message: str) -> None:
    body = {**PERSON, "segment_id": 100500, **params}
    if "segment_id" not in params:
        body.pop("segment_id")
    r = await client.post("/personaclick/segments/add", json=body)
    assert (r.status_code, r.json()) == (status, {"status": "error", "message": message})


async def test_personaclick_needs_a_person_and_the_right_method(client: httpx.AsyncClient) -> None:
    r = await client.post("/personaclick/segments/add", json={**SHOP, "segment_id": 100500})
    assert (r.status_code, r.json()["message"]) == (400, "email or phone is required")
    r = await client.get("/personaclick/segments/add", params=SHOP)
    assert r.status_code == 405


# -- Infinity -------------------------------------------------------------------------------------------

INF = "/infinity/config/v2/igrps/1"
INF_AUTH = {"Authorization": basic("infinity-sandbox", "infinity-sandbox-password")}
FORM = {"content-type": "application/x-www-form-urlencoded", **INF_AUTH}


async def test_infinity_documented_segment_lifecycle(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{INF}/segments", headers=FORM, content=(
        "segmentName=Section+A&segmentRef=sectionAbcd&criteria[0][field]=act&criteria[0][op]=begins&criteria[0][value]=12"
    ))
    assert r.status_code == 201
    created = orjson.loads(r.content.splitlines()[0])
    assert created["segment"] == "400" and created["segmentStatus"] == "200"  # numbers arrive as strings
    assert created["criteria"] == [{"field": "act", "op": "begins", "value": "12"}]

    r = await client.post(f"{INF}/segments", headers=INF_AUTH, params={"segmentName": "B", "segmentRef": "b"})
    assert r.status_code == 201  # parameters in the query string only, as the Go tool sends them

    r = await client.get(f"{INF}/segments", headers=INF_AUTH, params={"filter[]": "segmentRef-eq-value-sectionAbcd"})
    assert [orjson.loads(line)["segment"] for line in r.content.splitlines()] == ["400"]
    r = await client.get(f"{INF}/segments", headers=INF_AUTH, params={"sort[]": "segment-desc"})
    assert [orjson.loads(line)["segment"] for line in r.content.splitlines()] == ["401", "400"]
    r = await client.get(f"{INF}/segments", headers=INF_AUTH, params={"format": "jsonarray", "limit": 1})
    assert [row["segment"] for row in r.json()] == ["400"]
    r = await client.get(f"{INF}/segments", headers=INF_AUTH, params={"filter[]": "segmentRef-eq-value-none"})
    assert (r.status_code, r.content) == (200, b"")  # no rows: an empty body

    r = await client.post(f"{INF}/segments/400", headers=INF_AUTH, json={"segmentName": "Section A2"})
    assert (r.status_code, r.content) == (204, b"")
    r = await client.put(f"{INF}/segments/order", headers=FORM, content="sortedSegments[]=401&sortedSegments[]=400")
    assert r.status_code == 204
    r = await client.get(f"{INF}/segments/400", headers=INF_AUTH)
    row = orjson.loads(r.content)
    assert (row["segmentName"], row["segmentOrder"]) == ("Section A2", "2")
    r = await client.delete(f"{INF}/segments/400", headers=INF_AUTH)
    assert r.status_code == 204
    r = await client.delete(f"{INF}/segments/400", headers=INF_AUTH)
    assert (r.status_code, r.content) == (404, b'{"error":"segment 400 not found","code":404}\n')


async def test_infinity_groups(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{INF}/segmentGroups", headers=FORM, content="segmentGroupName=Customers")
    group = orjson.loads(r.content)
    assert r.status_code == 201 and group == {"segmentGroupId": "10", "segmentGroupName": "Customers", "igrp": "1",
                                              "segmentGroupStatus": "200"}
    r = await client.get(f"{INF}/segmentGroups", headers=INF_AUTH,
                         params={"filter[]": "segmentGroupName-eq-value-Customers"})
    assert orjson.loads(r.content) == group
    r = await client.post(f"{INF}/segments", headers=FORM, content="segmentName=x&segmentGroupId=99")
    assert (r.status_code, r.json()) == (400, {"error": "segmentGroupId 99 does not exist", "code": 400})


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("segmentRef=x", "segmentName is required"),
        ("segmentName=x&criteria[0][field]=act&criteria[0][op]=like&criteria[0][value]=1",
         "criteria[0][op]: unknown operator like"),
        ("segmentName=x&criteria[0][field]=act", "criteria[0] needs field, op and value"),
        ("segmentName=x&segmentOrder=first", "segmentOrder must be a positive integer"),
    ],
)
async def test_infinity_validation(client: httpx.AsyncClient, content: str, error: str) -> None:
    r = await client.post(f"{INF}/segments", headers=FORM, content=content)
    assert (r.status_code, r.json()) == (400, {"error": error, "code": 400})


async def test_infinity_segment_ref_is_unique(client: httpx.AsyncClient) -> None:
    for expected in (201, 400):
        r = await client.post(f"{INF}/segments", headers=FORM, content="segmentName=x&segmentRef=dup")
        assert r.status_code == expected


@pytest.mark.parametrize(
    ("path", "headers", "status", "error"),
    [
        (INF, {}, 401, "auth required"),
        (INF, {"Authorization": basic("infinity-sandbox", "nope")}, 401, "invalid credentials"),
        (INF, {"Authorization": "ApiKey infinity-sandbox-apikey"}, 200, None),
        ("/infinity/config/v2/igrps/2", INF_AUTH, 403, "access denied"),
        ("/infinity/config/v2/igrps/3", INF_AUTH, 404, "igrp 3 not found"),
    ],
)
async def test_infinity_auth(
    client: httpx.AsyncClient, path: str, headers: dict, status: int, error: str | None
) -> None:
    r = await client.get(f"{path}/segments", headers=headers)
    assert r.status_code == status
    if error:
        assert r.json() == {"error": error, "code": status}


# -- the sandbox itself ---------------------------------------------------------------------------------


def test_vendor_tables_configure_sluice(sandbox: SandboxServer) -> None:
    from config.settings import settings_from_mapping

    settings = settings_from_mapping({"vendors": sandbox_vendor_tables(sandbox.url)}, {})
    assert settings.vendors.personaclick is not None and settings.vendors.personaclick.segments["vip"] == 100500
    assert settings.vendors.infinity is not None and settings.vendors.infinity.igrp == 1
    assert settings.vendors.salesmachine is not None and settings.vendors.salesmachine.api_token_v2.get_secret_value()
    assert settings.vendors.segmetrics is not None
    assert settings.vendors.segmetrics.base_url == f"{sandbox.url}/segmetrics/api/v1"


async def test_control_api(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    fault = {"vendor": "segmetrics", "status": 429, "retry_after": 5, "times": 2}
    r = await client.post("/_sandbox/faults", json=fault)
    assert r.status_code == 201
    for _ in range(2):
        r = await client.post(f"{SM}/contact", json=DOC_CONTACT, headers={**SM_AUTH, "Idempotency-Key": "k1"})
        assert (r.status_code, r.headers["retry-after"]) == (429, "5")
    r = await client.post(f"{SM}/contact", json=DOC_CONTACT, headers={**SM_AUTH, "Idempotency-Key": "k1"})
    assert r.status_code == 200

    recorded = (await client.get("/_sandbox/requests", params={"vendor": "segmetrics"})).json()
    assert [(q["status"], q["fault"], q["idempotency_key"]) for q in recorded] == [
        (429, "status", "k1"), (429, "status", "k1"), (200, None, "k1"),
    ]
    assert recorded[0]["body"] == orjson.dumps(DOC_CONTACT).decode()
    state = (await client.get("/_sandbox/state")).json()
    assert state["segmetrics"]["2002"]["contacts"][0]["contact_id"] == "249"
    assert (await client.get("/_sandbox/duplicates")).json() == {"count": 0, "duplicates": []}

    r = await client.post("/_sandbox/faults", json={"vendor": "nobody"})
    assert r.status_code == 400
    r = await client.post("/_sandbox/faults", json={"vendor": "segmetrics", "colour": "red"})
    assert r.status_code == 400
    await client.post("/_sandbox/faults", json={"vendor": "*", "status": 500})
    r = await client.request("DELETE", "/_sandbox/faults")
    assert r.status_code == 204 and sandbox.state.pending_faults == []

    assert (await client.post("/_sandbox/reset")).status_code == 204
    assert sandbox.state.requests == [] and sandbox.state.segmetrics.integrations == {}


async def test_duplicates_count_writes_that_succeeded_twice(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    async def post(key: str) -> int:
        r = await client.post(f"{SM}/contact", json=DOC_CONTACT, headers={**SM_AUTH, "Idempotency-Key": key})
        return r.status_code

    sandbox.state.inject("segmetrics", status=503)
    assert [await post("a"), await post("a"), await post("b")] == [503, 200, 200]  # a retry after a failure
    assert sandbox.state.duplicate_count() == 0
    await post("b")
    await post("b")
    for _ in range(3):  # reads never count
        await client.get("/infinity/config/v2/igrps/1/segments", headers={**INF_AUTH, "Idempotency-Key": "b"})
    assert sandbox.state.duplicates() == {("b", "POST", f"{SM}/contact"): 3}
    assert sandbox.state.duplicate_count() == 2
    body = (await client.get("/_sandbox/duplicates")).json()
    assert body == {"count": 2, "duplicates": [{"idempotency_key": "b", "method": "POST", "path": f"{SM}/contact",
                                                "times": 3}]}


async def test_drop_after_means_the_vendor_acted(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    sandbox.state.inject("segmetrics", drop="after")
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(f"{SM}/contact", json=DOC_CONTACT, headers={**SM_AUTH, "Idempotency-Key": "k"})
    assert "249" in sandbox.state.segmetrics.integration("2002").contacts
    [req] = sandbox.state.requests
    assert (req.status, req.fault) == (200, "drop-after")


async def test_latency_and_outcome_faults_combine(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    sandbox.state.inject("*", delay=0.001, times=100)
    sandbox.state.inject("segmetrics", status=503, times=1)
    statuses = [(await client.post(f"{SM}/contact", json=DOC_CONTACT, headers=SM_AUTH)).status_code for _ in range(2)]
    assert statuses == [503, 200]
    assert [r.fault for r in sandbox.state.requests] == ["status", "delay"]
    [latency] = sandbox.state.pending_faults
    assert latency.times == 98


def test_inject_validates() -> None:
    state = SandboxState()
    with pytest.raises(ValueError):
        state.inject("nobody")
    with pytest.raises(ValueError):
        state.inject("infinity", times=0)
    with pytest.raises(ValueError):
        state.inject("infinity", status=42)
    with pytest.raises(ValueError):
        state.inject("infinity", drop="sometimes")


async def test_in_process_app_without_a_server() -> None:
    """The app also runs on httpx's ASGI transport (no uvicorn): useful for quick checks."""
    state = SandboxState()
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        r = await http.post(f"{SM}/contact", json=DOC_CONTACT, headers=SM_AUTH)
    assert r.status_code == 200 and state.requests[0].status == 200


def test_runs_as_its_own_process(tmp_path: Path) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        with httpx.Client(base_url=url, timeout=1) as http:
            while True:  # bounded poll for startup
                try:
                    if http.get("/_sandbox/state").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the sandbox process did not start"
                try:  # wait a moment for it to come up, noticing at once if it dies instead
                    proc.wait(timeout=0.02)
                except subprocess.TimeoutExpired:
                    continue
                pytest.fail(proc.stdout.read().decode() if proc.stdout else "the sandbox process exited")
            assert http.post("/_sandbox/faults", json={"vendor": "infinity", "status": 502}).status_code == 201
            r = http.get("/infinity/config/v2/igrps/1/segments", headers=INF_AUTH)
            assert r.status_code == 502
            assert http.get("/infinity/config/v2/igrps/1/segments", headers=INF_AUTH).status_code == 200
            assert [q["status"] for q in http.get("/_sandbox/requests").json()] == [502, 200]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
