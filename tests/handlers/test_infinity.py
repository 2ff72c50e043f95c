"""Every Infinity operation through `Vendors.perform`, over HTTP against the sandbox, and the upsert's
safety against repeats and half-way crashes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from core.errors import PermanentError, TransientError
from handlers.registry import Vendors
from tests.handlers import samples
from tests.handlers.conftest import KEY
from tests.support.sandbox import SandboxServer

BASE = "/infinity/config/v2/igrps/1"


def segments(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.infinity.segments.values())


def groups(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.infinity.groups.values())


async def test_upsert_creates_group_and_segment(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    [group] = groups(sandbox)
    [segment] = segments(sandbox)
    assert group["segmentGroupName"] == "Customers"
    assert segment["segmentRef"] == "vip" and segment["segmentName"] == "VIP customers"
    assert segment["segmentGroupId"] == group["segmentGroupId"]
    assert segment["criteria"] == [{"field": "act", "op": "begins", "value": "12"}]
    reqs = sandbox.state.requests
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("GET", f"{BASE}/segmentGroups", 200),
        ("POST", f"{BASE}/segmentGroups", 201),
        ("GET", f"{BASE}/segments", 200),
        ("POST", f"{BASE}/segments", 201),
    ]
    assert reqs[0].query_pairs() == [("filter[]", "segmentGroupName-eq-value-Customers")]
    assert reqs[2].query_pairs() == [("filter[]", "segmentRef-eq-value-vip")]
    assert "format" not in reqs[0].query  # NDJSON, the default
    assert reqs[3].headers["content-type"] == "application/x-www-form-urlencoded"
    assert reqs[3].body == (  # http_build_query's bytes: brackets percent-encoded, a space as +
        "segmentName=VIP+customers&segmentRef=vip&segmentOrder=1&segmentGroupId=10"
        "&criteria%5B0%5D%5Bfield%5D=act&criteria%5B0%5D%5Bop%5D=begins&criteria%5B0%5D%5Bvalue%5D=12"
    )
    assert reqs[2].query == "filter%5B%5D=segmentRef-eq-value-vip"
    auth = "Basic " + base64.b64encode(b"infinity-sandbox:infinity-sandbox-password").decode()
    assert all(r.headers["authorization"] == auth and r.idempotency_key == KEY for r in reqs)


async def test_upsert_twice_leaves_one_of_each(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    await perform("infinity", "upsert_segment", samples.segment_upsert(name="Very important", order=3))
    [segment] = segments(sandbox)
    assert len(groups(sandbox)) == 1
    assert segment["segmentName"] == "Very important" and segment["segmentOrder"] == 3
    update = sandbox.state.requests[-1]
    assert (update.method, update.path, update.status) == ("POST", f"{BASE}/segments/{segment['segment']}", 204)
    assert sandbox.state.duplicate_count() == 0


async def test_upsert_after_a_crash_half_way(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    """The group got created, then the segment lookup failed: running the call again finishes the job."""
    sandbox.state.inject("infinity", status=503, path_contains="/segments")
    with pytest.raises(TransientError):
        await perform("infinity", "upsert_segment", samples.segment_upsert())
    assert len(groups(sandbox)) == 1 and segments(sandbox) == []
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    assert len(groups(sandbox)) == 1 and len(segments(sandbox)) == 1
    assert sandbox.state.duplicate_count() == 0


async def test_upsert_after_a_create_whose_answer_was_lost(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    """The create reached the vendor but the connection dropped before the answer: the retry finds the
    segment by its segmentRef and updates it instead of creating a second one."""
    sandbox.state.inject("infinity", drop="after", method="POST", path_contains="/segments")
    with pytest.raises(TransientError):
        await perform("infinity", "upsert_segment", samples.segment_upsert())
    assert len(segments(sandbox)) == 1
    await perform("infinity", "upsert_segment", samples.segment_upsert(name="Renamed"))
    [segment] = segments(sandbox)
    assert segment["segmentName"] == "Renamed" and len(groups(sandbox)) == 1
    assert [r.fault for r in sandbox.state.requests_for("infinity", method="POST", path_contains="/segments")] == [
        "drop-after", None,
    ]


async def test_upsert_that_loses_a_create_race_updates(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    """Another writer created the segment between our lookup and our create: the create is refused
    (segmentRef is unique), the segment is read again and updated."""
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    sandbox.state.inject("infinity", status=200, body="", method="GET", path_contains="/segments")  # stale lookup
    await perform("infinity", "upsert_segment", samples.segment_upsert(name="Second"))
    [segment] = segments(sandbox)
    assert segment["segmentName"] == "Second"
    tail = [(r.method, r.status) for r in sandbox.state.requests_for(path_contains="/segments")][-4:]
    assert tail == [("GET", 200), ("POST", 400), ("GET", 200), ("POST", 204)]


async def test_upsert_racing_a_delete_creates_afresh(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    """The lookup found a segment that a concurrent delete removed before our update: the update's 404 means
    "gone", so the upsert creates the segment instead of failing."""
    stale = '{"segment":"999","segmentRef":"vip","segmentName":"VIP customers"}\n'
    sandbox.state.inject("infinity", status=200, body=stale, method="GET", path_contains="/segments")
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    [segment] = segments(sandbox)
    assert segment["segmentRef"] == "vip"
    tail = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in sandbox.state.requests_for(
        path_contains="/segments")][-3:]
    assert tail == [("GET", "segments", 200), ("POST", "999", 404), ("POST", "segments", 201)]


async def test_upsert_without_group(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert(group=None, criteria=[]))
    [segment] = segments(sandbox)
    assert groups(sandbox) == [] and segment["segmentGroupId"] is None
    assert not any("segmentGroups" in r.path for r in sandbox.state.requests)


async def test_get_and_list(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    await perform("infinity", "get_segment", samples.segment_upsert())
    await perform("infinity", "list_segments", samples.segment_upsert())
    await perform("infinity", "get_segment_group", samples.segment_upsert())
    await perform("infinity", "list_segment_groups", samples.segment_upsert())
    sid = segments(sandbox)[0]["segment"]
    gid = groups(sandbox)[0]["segmentGroupId"]
    paths = [(r.method, r.path, r.query) for r in sandbox.state.requests[4:]]
    assert paths == [
        ("GET", f"{BASE}/segments", "filter%5B%5D=segmentRef-eq-value-vip"),
        ("GET", f"{BASE}/segments/{sid}", ""),
        ("GET", f"{BASE}/segments", ""),
        ("GET", f"{BASE}/segmentGroups", "filter%5B%5D=segmentGroupName-eq-value-Customers"),
        ("GET", f"{BASE}/segmentGroups/{gid}", ""),
        ("GET", f"{BASE}/segmentGroups", ""),
    ]


async def test_get_of_an_unknown_segment_is_permanent(perform: Callable[..., Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        await perform("infinity", "get_segment", samples.segment_upsert())
    assert caught.value.status == 404
    with pytest.raises(PermanentError):
        await perform("infinity", "get_segment_group", samples.segment_upsert())


async def test_list_of_nothing_is_an_empty_body(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "list_segments", samples.segment_upsert())
    assert sandbox.state.requests[0].status == 200


async def test_order_segments_moves_the_event_segment(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    for ref in ("a", "b", "vip"):
        await perform("infinity", "upsert_segment", samples.segment_upsert(id=ref, name=ref, order=None, group=None))
    by_ref = {s["segmentRef"]: s for s in segments(sandbox)}
    assert [by_ref[r]["segmentOrder"] for r in ("a", "b", "vip")] == [1, 2, 3]
    await perform("infinity", "order_segments", samples.segment_upsert(order=1))
    assert {s["segmentRef"]: s["segmentOrder"] for s in segments(sandbox)} == {"vip": 1, "a": 2, "b": 3}
    put = sandbox.state.requests[-1]
    assert (put.method, put.path, put.status) == ("PUT", f"{BASE}/segments/order", 204)
    ids = [str(by_ref[r]["segment"]) for r in ("vip", "a", "b")]
    assert put.form() == [("sortedSegments[]", sid) for sid in ids]


async def test_order_segments_from_an_explicit_list(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    for ref in ("a", "b", "c"):
        await perform("infinity", "upsert_segment", samples.segment_upsert(id=ref, name=ref, order=None, group=None))
    ev = samples.segment_upsert()
    ev["data"]["segments"] = ["c", {"id": "a"}, "b"]
    await perform("infinity", "order_segments", ev)
    assert {s["segmentRef"]: s["segmentOrder"] for s in segments(sandbox)} == {"c": 1, "a": 2, "b": 3}
    ev["data"]["segments"] = ["c", "nope"]
    with pytest.raises(PermanentError, match="nope"):
        await perform("infinity", "order_segments", ev)


async def test_delete_segment(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    sid = segments(sandbox)[0]["segment"]
    await perform("infinity", "delete_segment", samples.segment_delete())
    assert segments(sandbox) == []
    await perform("infinity", "delete_segment", samples.segment_delete())  # absent: done
    deletes = sandbox.state.requests_for("infinity", method="DELETE")
    assert [(r.path, r.status) for r in deletes] == [(f"{BASE}/segments/{sid}", 204)]


async def test_delete_that_gets_404_is_done(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "upsert_segment", samples.segment_upsert())
    sandbox.state.inject("infinity", status=404, method="DELETE")
    await perform("infinity", "delete_segment", samples.segment_delete())
    assert sandbox.state.requests[-1].status == 404


async def test_segment_groups(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    ev = samples.segment_upsert()
    await perform("infinity", "ensure_segment_group", ev)
    await perform("infinity", "ensure_segment_group", ev)
    assert len(groups(sandbox)) == 1
    await perform("infinity", "update_segment_group", ev)
    gid = groups(sandbox)[0]["segmentGroupId"]
    update = sandbox.state.requests[-1]
    assert (update.method, update.path, update.status) == ("POST", f"{BASE}/segmentGroups/{gid}", 204)
    await perform("infinity", "delete_segment_group", ev)
    await perform("infinity", "delete_segment_group", ev)
    assert groups(sandbox) == []
    assert len(sandbox.state.requests_for("infinity", method="DELETE")) == 1


async def test_update_segment_group_creates_a_missing_one(perform: Callable[..., Any], sandbox: SandboxServer) -> None:
    await perform("infinity", "update_segment_group", samples.segment_upsert(group="Leads"))
    assert [g["segmentGroupName"] for g in groups(sandbox)] == ["Leads"]


async def test_forbidden_criteria_are_refused(perform: Callable[..., Any]) -> None:
    ev = samples.segment_upsert(criteria=[{"field": "segment", "op": "eq", "value": 3}])
    with pytest.raises(PermanentError) as caught:
        await perform("infinity", "upsert_segment", ev)
    assert caught.value.status == 400 and "may not be used" in caught.value.message


@pytest.mark.parametrize(
    ("patch", "status"),
    [({"password": "wrong-password"}, 401), ({"username": "nobody"}, 401), ({"igrp": 2}, 403), ({"igrp": 7}, 404)],
)
async def test_bad_credentials_are_permanent(
    make_vendors: Callable[..., Vendors], patch: dict[str, Any], status: int
) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_vendors(infinity=patch).perform(
            "infinity", "upsert_segment", samples.segment_upsert(), idempotency_key=KEY, timeout=2
        )
    assert caught.value.status == status
    text = str(caught.value.as_dict())
    assert "wrong-password" not in text and "infinity-sandbox-password" not in text
