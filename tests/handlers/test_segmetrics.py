"""Every SegMetrics operation through `Vendors.perform`, over HTTP against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.errors import PermanentError
from handlers.base import user_agent
from handlers.registry import Vendors
from tests.handlers import samples
from tests.handlers.conftest import KEY
from tests.support.sandbox import SandboxServer

BASE = "/segmetrics/api/v1/1001/2002"


def integration(sandbox: SandboxServer, iid: str = "2002") -> Any:
    return sandbox.state.segmetrics.integration(iid)


async def test_upsert_contact(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "upsert_contact", samples.signup())
    [req] = sandbox.state.requests
    assert (req.method, req.path, req.status) == ("POST", f"{BASE}/contact", 200)
    assert req.headers["authorization"] == "segmetrics-sandbox-key"  # raw, no scheme
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == user_agent() and user_agent().startswith("sluice/")
    assert req.idempotency_key == KEY
    contact = integration(sandbox).contacts["cus_42"]
    assert contact["email"] == "ada@example.com"
    assert contact["date_created"] == "2026-11-24 10:00:00"
    assert contact["custom_fields"] == {"plan": "pro"}
    assert contact["tags"] == []  # tags are only ever added through tags/add


async def test_add_and_remove_tags(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "upsert_contact", samples.signup())
    await perform("segmetrics", "add_tags", samples.signup())
    await perform("segmetrics", "add_tags", samples.segment_join())
    await perform("segmetrics", "add_tags", samples.segment_join())  # set semantics
    assert integration(sandbox).contacts["cus_42"]["tags"] == ["newsletter", "VIP customers"]
    await perform("segmetrics", "remove_tags", samples.segment_leave())
    assert integration(sandbox).contacts["cus_42"]["tags"] == ["newsletter"]
    paths = [r.path for r in sandbox.state.requests]
    assert paths[1:] == [f"{BASE}/tags/add"] * 3 + [f"{BASE}/tags/remove"]
    assert sandbox.state.requests[1].json() == {"email": "ada@example.com", "tags": ["newsletter"]}


async def test_churn_adds_the_churned_tag(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "add_tags", samples.churn())
    [contact] = integration(sandbox).contacts.values()
    assert contact["tags"] == ["churned"] and contact["email"] == "ada@example.com"


async def test_no_tags_sends_nothing(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    ev = samples.signup()
    ev["contact"]["tags"] = []
    await perform("segmetrics", "add_tags", ev)
    assert sandbox.state.requests == []


async def test_upsert_and_delete_invoice(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "upsert_invoice", samples.purchase())
    invoice = integration(sandbox).invoices["ord_1001"]
    assert invoice["email"] == "ada@example.com" and invoice["amount"] == 4999 and invoice["is_refunded"] == 0
    await perform("segmetrics", "upsert_invoice", samples.refund())
    invoice = integration(sandbox).invoices["ord_1001"]
    assert invoice["is_refunded"] == 1 and invoice["paid"] == 0
    assert set(integration(sandbox).products) == {"sku_1", "sku_2"}  # auto-created

    await perform("segmetrics", "delete_invoice", samples.purchase())
    assert integration(sandbox).invoices == {}
    await perform("segmetrics", "delete_invoice", samples.purchase())  # 404 on a delete: done
    assert [r.status for r in sandbox.state.requests] == [200, 200, 200, 404]
    assert sandbox.state.requests[2].path == f"{BASE}/invoice/ord_1001"


async def test_invoice_by_contact_id_needs_the_contact(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    ev = samples.purchase()
    del ev["contact"]["email"]
    with pytest.raises(PermanentError) as caught:
        await perform("segmetrics", "upsert_invoice", ev)
    assert caught.value.status == 400 and "cus_42" in caught.value.message
    await perform("segmetrics", "upsert_contact", ev)
    await perform("segmetrics", "upsert_invoice", ev)
    assert integration(sandbox).invoices["ord_1001"]["contact_id"] == "cus_42"


async def test_upsert_and_delete_subscription(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "upsert_subscription", samples.purchase())
    sub = integration(sandbox).subscriptions["sub_9"]
    assert sub["start_date"] == "2026-01-01 00:00:00" and "canceled_date" not in sub
    await perform("segmetrics", "upsert_subscription", samples.churn())
    assert integration(sandbox).subscriptions["sub_9"]["canceled_date"] == "2026-11-24 10:00:00"
    await perform("segmetrics", "delete_subscription", samples.churn())
    await perform("segmetrics", "delete_subscription", samples.churn())
    assert integration(sandbox).subscriptions == {}
    assert sandbox.state.requests[-1].path == f"{BASE}/subscription/sub_9"


async def test_delete_contact(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("segmetrics", "upsert_contact", samples.signup())
    await perform("segmetrics", "delete_contact", samples.contact_delete())
    assert integration(sandbox).contacts == {}
    await perform("segmetrics", "delete_contact", samples.contact_delete())  # already gone: done
    assert [(r.method, r.path, r.status) for r in sandbox.state.requests[1:]] == [
        ("DELETE", f"{BASE}/contact/cus_42", 200), ("DELETE", f"{BASE}/contact/cus_42", 404),
    ]


async def test_ids_are_url_encoded(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    ev = samples.contact_delete()
    ev["contact"]["id"] = "a b+c?d#e"
    await perform("segmetrics", "upsert_contact", ev)
    await perform("segmetrics", "delete_contact", ev)
    req = sandbox.state.requests[1]
    assert (req.path, req.query, req.status) == (f"{BASE}/contact/a b+c?d#e", "", 200)
    assert integration(sandbox).contacts == {}


async def test_ad_performance_goes_to_the_ads_integration(
    make_vendors: Callable[..., Vendors], sandbox: SandboxServer
) -> None:
    await make_vendors().perform("segmetrics", "add_ad_performance", samples.ad_performance(),
                                 idempotency_key=KEY, timeout=2)
    assert sandbox.state.requests[0].path == "/segmetrics/api/v1/1001/3003/ad/performance"
    assert list(integration(sandbox, "3003").ad_performance) == ["ad_1|2026-11-23"]

    await make_vendors(segmetrics={"ads_integration_id": None}).perform(
        "segmetrics", "add_ad_performance", samples.ad_performance(), idempotency_key=KEY, timeout=2
    )
    assert sandbox.state.requests[1].path == f"{BASE}/ad/performance"


@pytest.mark.parametrize(
    ("patch", "status"),
    [({"api_key": "wrong-key"}, 401), ({"account_id": "9999"}, 404), ({"integration_id": "9999"}, 404)],
)
async def test_bad_credentials_are_permanent(
    make_vendors: Callable[..., Vendors], patch: dict[str, str], status: int
) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_vendors(segmetrics=patch).perform(
            "segmetrics", "upsert_contact", samples.signup(), idempotency_key=KEY, timeout=2
        )
    assert caught.value.status == status
    assert "wrong-key" not in str(caught.value.as_dict())


async def test_bearer_prefix_is_refused(sandbox: SandboxServer, make_vendors: Callable[..., Vendors]) -> None:
    """The emulator checks the raw key exactly, as SegMetrics documents."""
    with pytest.raises(PermanentError) as caught:
        await make_vendors(segmetrics={"api_key": "Bearer segmetrics-sandbox-key"}).perform(
            "segmetrics", "upsert_contact", samples.signup(), idempotency_key=KEY, timeout=2
        )
    assert caught.value.status == 401
    assert caught.value.message.endswith("unauthorized")
