"""Infinity Config API v2 emulator, under `/infinity/config/v2/igrps/{igrp}`: segments and segment groups.

Auth: HTTP Basic user:password (v2), or `Authorization: ApiKey <key>` (v2.1); none -> 401 "auth required",
wrong -> 401. IGRP 1 is the sandbox's, IGRP 2 exists but is forbidden (403 "access denied"), any other is
404. Parameters are read from the query string, a form body with PHP arrays, or a JSON body (merged).
Answers are NDJSON (one object per line, scalars as strings, an empty body for no rows), or a JSON array with
`format=jsonarray`. Lists take `filter[]=<field>-<op>-value-<value>` (ops eq, neq, begins, nbegins,
contains, ncontains), `sort[]=<field>-asc|desc`, `limit` and `offset`. Create -> 201 with the new row;
update, reorder and delete -> 204 with no body; unknown ids -> 404; invalid parameters -> 400. Errors are one
line `{"error":"<message>","code":<status>}`. Ids are allocated by the server (segments from 400, groups
from 10); `segmentRef` is unique per IGRP.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.common import BadBody, Locked, as_int, bearer, json_response, merged_params, ndjson_response, parse_basic
from sandbox.credentials import SandboxCredentials

FILTER = re.compile(r"^([A-Za-z0-9_]+)-([a-z]+)-value-(.*)$", re.S)
SORT = re.compile(r"^([A-Za-z0-9_]+)-(asc|desc)$")
CRITERIA_OPS = frozenset({"begins", "nbegins", "eq", "neq", "contains", "ncontains"})
FORBIDDEN_CRITERIA = re.compile(r"^(segment|goal.*|attr.*)$", re.I)
ACTIVE = 200

Doc = dict[str, Any]


def error_payload(status: int, message: str) -> bytes:
    """The body of an injected fault, shaped like this vendor's errors."""
    return orjson.dumps({"error": message, "code": status}) + b"\n"


def _error(status: int, message: str) -> Response:
    return Response(error_payload(status, message), status_code=status, media_type="application/json")


class Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, message)


def stringify(value: Any) -> Any:
    """Infinity's rendering: every scalar a string, nulls left out."""
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [stringify(v) for v in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass
class InfinityStore:
    igrp: int = 1
    segments: dict[int, Doc] = field(default_factory=dict)
    groups: dict[int, Doc] = field(default_factory=dict)
    next_segment: int = 400
    next_group: int = 10

    def snapshot(self) -> dict[str, Any]:
        return {
            "segments": [stringify(s) for s in self.segments.values()],
            "segmentGroups": [stringify(g) for g in self.groups.values()],
        }

    # -- validation ---------------------------------------------------------------------------------

    def _criteria(self, value: Any) -> list[Doc]:
        if isinstance(value, dict):  # criteria[0][...] with a gap in the indexes
            value = list(value.values())
        if not isinstance(value, list):
            raise Invalid(400, "criteria must be a list of {field, op, value}")
        out = []
        for i, criterion in enumerate(value):
            if not isinstance(criterion, dict) or any(criterion.get(k) in (None, "") for k in ("field", "op")) or (
                "value" not in criterion
            ):
                raise Invalid(400, f"criteria[{i}] needs field, op and value")
            if str(criterion["op"]) not in CRITERIA_OPS:
                raise Invalid(400, f"criteria[{i}][op]: unknown operator {criterion['op']}")
            if FORBIDDEN_CRITERIA.match(str(criterion["field"])):
                raise Invalid(400, f"criteria[{i}][field]: {criterion['field']} may not be used in a segment")
            out.append({"field": str(criterion["field"]), "op": str(criterion["op"]), "value": str(criterion["value"])})
        return out

    def _segment_fields(self, params: Doc, current: int | None) -> Doc:
        fields: Doc = {}
        if "segmentName" in params:
            if not str(params["segmentName"]).strip():
                raise Invalid(400, "segmentName may not be empty")
            fields["segmentName"] = str(params["segmentName"])
        if params.get("segmentRef") not in (None, ""):
            ref = str(params["segmentRef"])
            if any(s["segmentRef"] == ref and sid != current for sid, s in self.segments.items()):
                raise Invalid(400, f"segmentRef {ref} is already in use")
            fields["segmentRef"] = ref
        if params.get("segmentOrder") not in (None, ""):
            order = as_int(params["segmentOrder"])
            if order is None or order < 1:
                raise Invalid(400, "segmentOrder must be a positive integer")
            fields["segmentOrder"] = order
        if "segmentGroupId" in params:
            if params["segmentGroupId"] in (None, ""):
                fields["segmentGroupId"] = None
            else:
                gid = as_int(params["segmentGroupId"])
                if gid is None or gid not in self.groups:
                    raise Invalid(400, f"segmentGroupId {params['segmentGroupId']} does not exist")
                fields["segmentGroupId"] = gid
        if "criteria" in params:
            fields["criteria"] = self._criteria(params["criteria"])
        if params.get("orgId") not in (None, ""):
            fields["orgId"] = as_int(params["orgId"]) or params["orgId"]
        if params.get("segmentStatus") not in (None, ""):
            fields["segmentStatus"] = as_int(params["segmentStatus"]) or ACTIVE
        return fields

    # -- segments -----------------------------------------------------------------------------------

    def create_segment(self, params: Doc) -> Doc:
        if params.get("segmentName") in (None, ""):
            raise Invalid(400, "segmentName is required")
        fields = self._segment_fields(params, None)
        sid = self.next_segment
        if sid > 65535:
            raise Invalid(400, "no segment id left")
        self.next_segment += 1
        order = max((s["segmentOrder"] for s in self.segments.values()), default=0) + 1
        segment = {
            "segment": sid, "igrp": self.igrp, "segmentName": fields["segmentName"], "segmentRef": None,
            "segmentOrder": order, "segmentStatus": ACTIVE, "segmentGroupId": None, "orgId": None, "criteria": [],
        }
        segment.update(fields)
        self.segments[sid] = segment
        return segment

    def update_segment(self, sid: int, params: Doc) -> None:
        if sid not in self.segments:
            raise Invalid(404, f"segment {sid} not found")
        self.segments[sid].update(self._segment_fields(params, sid))

    def order_segments(self, params: Doc) -> None:
        ids = params.get("sortedSegments")
        if isinstance(ids, (str, int)):
            ids = [ids]
        if not isinstance(ids, list) or not ids:
            raise Invalid(400, "sortedSegments[] is required")
        parsed = [as_int(i) for i in ids]
        if any(i is None or i not in self.segments for i in parsed) or len(set(parsed)) != len(parsed):
            raise Invalid(400, "sortedSegments[] must name each existing segment once")
        for place, sid in enumerate(parsed, start=1):
            self.segments[sid]["segmentOrder"] = place  # type: ignore[index]

    # -- groups -------------------------------------------------------------------------------------

    def create_group(self, params: Doc) -> Doc:
        name = params.get("segmentGroupName")
        if name in (None, ""):
            raise Invalid(400, "segmentGroupName is required")
        gid = self.next_group
        self.next_group += 1
        group = {"segmentGroupId": gid, "segmentGroupName": str(name), "igrp": self.igrp, "segmentGroupStatus": ACTIVE}
        self.groups[gid] = group
        return group

    def update_group(self, gid: int, params: Doc) -> None:
        if gid not in self.groups:
            raise Invalid(404, f"segment group {gid} not found")
        if "segmentGroupName" in params:
            if params["segmentGroupName"] in (None, ""):
                raise Invalid(400, "segmentGroupName may not be empty")
            self.groups[gid]["segmentGroupName"] = str(params["segmentGroupName"])
        if params.get("segmentGroupStatus") not in (None, ""):
            self.groups[gid]["segmentGroupStatus"] = as_int(params["segmentGroupStatus"]) or ACTIVE

    def delete_group(self, gid: int) -> None:
        if gid not in self.groups:
            raise Invalid(404, f"segment group {gid} not found")
        del self.groups[gid]
        for segment in self.segments.values():
            if segment["segmentGroupId"] == gid:
                segment["segmentGroupId"] = None


# -- listing --------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _keep(row: Doc, field_name: str, op: str, wanted: str) -> bool:
    have = row.get(field_name)
    text = "" if have is None else str(have)
    if op == "eq":
        return text == wanted
    if op == "neq":
        return text != wanted
    if op == "begins":
        return text.startswith(wanted)
    if op == "nbegins":
        return not text.startswith(wanted)
    if op == "contains":
        return wanted in text
    if op == "ncontains":
        return wanted not in text
    raise Invalid(400, f"unknown filter operator {op}")


def _sort_key(field_name: str) -> Callable[[Doc], tuple[int, Any]]:
    def key(row: Doc) -> tuple[int, Any]:
        value = row.get(field_name)
        if isinstance(value, int) and not isinstance(value, bool):
            return (0, value)
        return (1, "" if value is None else str(value))

    return key


def select(rows: Iterable[Doc], params: Doc) -> list[Doc]:
    """Apply filter[], sort[], offset and limit."""
    selected = list(rows)
    for spec in _as_list(params.get("filter")):
        match = FILTER.match(spec)
        if match is None:
            raise Invalid(400, f"filter {spec!r} is not <field>-<op>-value-<value>")
        name, op, wanted = match.groups()
        selected = [r for r in selected if _keep(r, name, op, wanted)]
    for spec in reversed(_as_list(params.get("sort"))):  # stable sorts, last key first
        match = SORT.match(spec)
        if match is None:
            raise Invalid(400, f"sort {spec!r} is not <field>-asc|desc")
        selected.sort(key=_sort_key(match.group(1)), reverse=match.group(2) == "desc")
    offset = as_int(params.get("offset", 0))
    limit = as_int(params.get("limit", 50_000))
    if offset is None or limit is None or offset < 0 or limit < 0:
        raise Invalid(400, "limit and offset must be non-negative integers")
    return selected[offset : offset + min(limit, 50_000)]


def render(rows: list[Doc], params: Doc, status: int = 200) -> Response:
    fmt = params.get("format")
    out = [stringify(r) for r in rows]
    if fmt in (None, "", "ndjson", "json"):
        return ndjson_response(out, status)
    if fmt == "jsonarray":
        return json_response(out, status)
    raise Invalid(400, f"format {fmt} is not supported by the sandbox")


# -- HTTP -----------------------------------------------------------------------------------------------


def routes(creds: SandboxCredentials, locked: Locked[InfinityStore]) -> list[BaseRoute]:

    def auth(request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if not header:
            return _error(401, "auth required")
        basic = parse_basic(header)
        if basic is not None and basic == (creds.infinity_username, creds.infinity_password):
            return None
        if bearer(header, "apikey") == creds.infinity_api_key:
            return None
        return _error(401, "invalid credentials")

    Op = Callable[[InfinityStore, Request, Doc], Response]

    def endpoint(op: Op) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            problem = auth(request)
            if problem is not None:
                return problem
            igrp = request.path_params["igrp"]
            if igrp == creds.infinity_forbidden_igrp:
                return _error(403, "access denied")
            if igrp != creds.infinity_igrp:
                return _error(404, f"igrp {igrp} not found")
            try:
                params = await merged_params(request)
            except BadBody as exc:
                return _error(400, str(exc))
            try:
                with locked as store:
                    return op(store, request, params)
            except Invalid as exc:
                return exc.response

        return handle

    def segments(store: InfinityStore, request: Request, params: Doc) -> Response:
        if request.method == "POST":
            return render([store.create_segment(params)], params, 201)
        return render(select(store.segments.values(), params), params)

    def segment(store: InfinityStore, request: Request, params: Doc) -> Response:
        sid = request.path_params["segment"]
        if request.method == "POST":
            store.update_segment(sid, params)
            return Response(status_code=204)
        if sid not in store.segments:
            raise Invalid(404, f"segment {sid} not found")
        if request.method == "DELETE":
            del store.segments[sid]
            return Response(status_code=204)
        return render([store.segments[sid]], params)

    def order(store: InfinityStore, request: Request, params: Doc) -> Response:
        store.order_segments(params)
        return Response(status_code=204)

    def groups(store: InfinityStore, request: Request, params: Doc) -> Response:
        if request.method == "POST":
            return render([store.create_group(params)], params, 201)
        return render(select(store.groups.values(), params), params)

    def group(store: InfinityStore, request: Request, params: Doc) -> Response:
        gid = request.path_params["group"]
        if request.method == "POST":
            store.update_group(gid, params)
            return Response(status_code=204)
        if request.method == "DELETE":
            store.delete_group(gid)
            return Response(status_code=204)
        if gid not in store.groups:
            raise Invalid(404, f"segment group {gid} not found")
        return render([store.groups[gid]], params)

    async def not_found(request: Request) -> Response:
        return _error(404, "not found")

    base = "/config/v2/igrps/{igrp:int}"
    return [
        Route(f"{base}/segments", endpoint(segments), methods=["GET", "POST"]),
        Route(f"{base}/segments/order", endpoint(order), methods=["PUT"]),
        Route(f"{base}/segments/{{segment:int}}", endpoint(segment), methods=["GET", "POST", "DELETE"]),
        Route(f"{base}/segmentGroups", endpoint(groups), methods=["GET", "POST"]),
        Route(f"{base}/segmentGroups/{{group:int}}", endpoint(group), methods=["GET", "POST", "DELETE"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
