"""Infinity Config API v2: segments and segment groups under `{base_url}/config/v2/igrps/{igrp}`.

Decisions (vendors.md): HTTP Basic; request parameters form-encoded with PHP-style arrays
(`criteria[0][field]=act`, `sortedSegments[]=401`); responses are NDJSON (no `format` sent), an empty body
is no rows, numbers arrive as strings; segments are found by `filter[]=segmentRef-eq-value-<ref>` (our
segment id is the `segmentRef`), groups by `filter[]=segmentGroupName-eq-value-<name>`; a delete that gets
404 is done.

Creating is not idempotent (the server allocates ids), so every write is "find, then create or update":
`upsert_segment` run twice, or re-run after a crash between creating the group and creating the segment,
leaves one group and one segment. A create refused with 400/409/422 is followed by one more lookup (a
concurrent writer may have created the segment meanwhile, and segmentRef is unique): found, it is updated.
When duplicates exist anyway (groups have no unique key), the lowest id is used. Several requests of one
operation share its time budget.

Mapping from an event (`data.segment` = `{id, name, order, group, criteria}`):
- segment operations use `segment.id` as segmentRef; group operations use `segment.group` as the group name;
- `ensure_segment_group` creates the group when absent and leaves an existing one alone;
  `update_segment_group` also re-sends the fields of an existing one (the name is all a group has);
- `order_segments` sends `sortedSegments[]`: the refs of `data.segments` in that order when the event has
  such a list, otherwise every segment by its current `segmentOrder` with the event's segment moved to
  `segment.order` (ahead of a segment already holding that place).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from config.settings import InfinitySettings
from core.clock import Clock, system_clock
from core.errors import PermanentError
from handlers.base import Call, VendorClient, basic_auth_header, message_from_json, not_understood
from handlers.fields import Event, need

Pairs = list[tuple[str, str]]

# -- pure payload builders ----------------------------------------------------------------------------


def scalar(value: Any) -> str:
    """Form values are strings; booleans the PHP way."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def criteria_pairs(criteria: Iterable[Mapping[str, Any]]) -> Pairs:
    """`[{field, op, value}]` as `criteria[0][field]=act&criteria[0][op]=begins&criteria[0][value]=12`."""
    pairs: Pairs = []
    for i, criterion in enumerate(criteria):
        for key in ("field", "op", "value"):
            if criterion.get(key) is None:
                raise PermanentError(f"infinity: criterion {i} has no {key}")
            pairs.append((f"criteria[{i}][{key}]", scalar(criterion[key])))
    return pairs


def segment_form(segment: Mapping[str, Any], group_id: str | None) -> Pairs:
    """The create / update parameters of a segment from `data.segment`."""
    if segment.get("id") in (None, ""):
        raise PermanentError("infinity: the event's segment has no id (its segmentRef)")
    pairs: Pairs = [
        ("segmentName", scalar(segment.get("name") or segment["id"])),
        ("segmentRef", scalar(segment["id"])),
    ]
    if segment.get("order") is not None:
        pairs.append(("segmentOrder", scalar(segment["order"])))
    if group_id is not None:
        pairs.append(("segmentGroupId", group_id))
    pairs.extend(criteria_pairs(segment.get("criteria") or []))
    return pairs


def group_form(name: str) -> Pairs:
    return [("segmentGroupName", name)]


def ref_filter(ref: str) -> Pairs:
    return [("filter[]", f"segmentRef-eq-value-{ref}")]


def group_filter(name: str) -> Pairs:
    return [("filter[]", f"segmentGroupName-eq-value-{name}")]


def order_form(segment_ids: Sequence[str]) -> Pairs:
    return [("sortedSegments[]", sid) for sid in segment_ids]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def reordered(rows: Sequence[Mapping[str, Any]], ref: str, order: int | None) -> list[str]:
    """Segment ids by current `segmentOrder` (then id), the segment whose ref is `ref` moved to `order`."""

    def key(row: Mapping[str, Any]) -> tuple[int, int, int]:
        mine = str(row.get("segmentRef")) == ref
        place = order if mine and order is not None else _int(row.get("segmentOrder"), 1 << 30)
        return (place, 0 if mine else 1, _int(row.get("segment")))

    return [str(row["segment"]) for row in sorted(rows, key=key)]


def group_name(event: Event) -> str:
    group = need(event, "data.segment.group")
    if isinstance(group, Mapping):
        group = group.get("name")
    if group in (None, ""):
        raise PermanentError("infinity: the event's segment has no group name")
    return str(group)


# -- the client -----------------------------------------------------------------------------------------


class InfinityClient(VendorClient):
    vendor = "infinity"

    def __init__(self, cfg: InfinitySettings, http: httpx.AsyncBaseTransport, *, clock: Clock = system_clock) -> None:
        password = cfg.password.get_secret_value()
        auth = basic_auth_header(cfg.username, password)
        super().__init__(
            http,
            f"{cfg.base_url.rstrip('/')}/config/v2/igrps/{cfg.igrp}",
            headers={"Authorization": auth},
            secrets=(password, auth.split()[1]),
            clock=clock,
        )

    def error_detail(self, text: str) -> str | None:
        # documented shape unknown; the sandbox answers {"error": "...", "code": n}
        lines = text.strip().splitlines()
        return message_from_json(lines[0], "error", "message") if lines else None

    # -- reading --------------------------------------------------------------------------------------

    async def _rows(self, call: Call, path: str, params: Pairs | None = None) -> list[dict[str, Any]]:
        response = await self.fetch(call, "GET", path, params=params)
        return self.ndjson_rows(response)

    async def _find(
        self, call: Call, path: str, id_field: str, name_field: str, value: str, params: Pairs
    ) -> list[str]:
        """Ids of the rows whose `name_field` is `value`, lowest first (rows the filter let through but that
        do not match are ignored, and so are rows without an id)."""
        rows = await self._rows(call, path, params)
        ids = [str(r[id_field]) for r in rows if str(r.get(name_field)) == value and r.get(id_field) is not None]
        return sorted(ids, key=_int)

    async def _find_segments(self, call: Call, ref: str) -> list[str]:
        return await self._find(call, "/segments", "segment", "segmentRef", ref, ref_filter(ref))

    async def _find_groups(self, call: Call, name: str) -> list[str]:
        return await self._find(call, "/segmentGroups", "segmentGroupId", "segmentGroupName", name, group_filter(name))

    # -- writing --------------------------------------------------------------------------------------

    async def _create(self, call: Call, path: str, form: Pairs) -> httpx.Response:
        return await self.fetch(call, "POST", path, form=form)

    async def _update(self, call: Call, path: str, form: Pairs) -> None:
        await self.fetch(call, "POST", path, form=form)

    async def _delete(self, call: Call, path: str) -> None:
        await self.send(call, "DELETE", path, missing_ok=True)

    async def _ensure_group(self, call: Call, name: str, *, update: bool = False) -> str:
        found = await self._find_groups(call, name)
        if found:
            if update:
                await self._update(call, f"/segmentGroups/{found[0]}", group_form(name))
            return found[0]
        response = await self._create(call, "/segmentGroups", group_form(name))
        try:  # the 201 body is undocumented: use the id when it is there, else look it up again
            for row in self.ndjson_rows(response):
                if str(row.get("segmentGroupName")) == name and row.get("segmentGroupId") is not None:
                    return str(row["segmentGroupId"])
        except PermanentError:
            pass
        found = await self._find_groups(call, name)
        if not found:
            raise not_understood(self.vendor, response, f"group {name!r} created but not found afterwards",
                                 self.secrets)
        return found[0]

    # -- segments -------------------------------------------------------------------------------------

    async def list_segments(self, event: Event, call: Call) -> None:
        await self._rows(call, "/segments")

    async def get_segment(self, event: Event, call: Call) -> None:
        ref = str(need(event, "data.segment.id"))
        found = await self._find_segments(call, ref)
        if not found:
            raise PermanentError(f"infinity has no segment with segmentRef {ref}", status=404)
        response = await self.fetch(call, "GET", f"/segments/{found[0]}")
        if not self.ndjson_rows(response):
            raise not_understood(self.vendor, response, "no segment row", self.secrets)

    async def upsert_segment(self, event: Event, call: Call) -> None:
        """Ensure the group, then find the segment by segmentRef and update it (204) or create it (201)."""
        segment = need(event, "data.segment")
        ref = str(need(event, "data.segment.id"))
        group_id = await self._ensure_group(call, group_name(event)) if segment.get("group") else None
        form = segment_form(segment, group_id)
        found = await self._find_segments(call, ref)
        if found:
            try:
                await self._update(call, f"/segments/{found[0]}", form)
                return
            except PermanentError as gone:
                if gone.status != 404:
                    raise
                # deleted since the lookup (a segment.delete delivered meanwhile): an upsert creates it afresh
        try:
            await self._create(call, "/segments", form)
        except PermanentError as refused:
            # another writer may have created it since the lookup (segmentRef is unique per IGRP): re-read
            # before giving up, and update what is there
            if refused.status not in (400, 409, 422):
                raise
            found = await self._find_segments(call, ref)
            if not found:
                raise
            await self._update(call, f"/segments/{found[0]}", form)

    async def order_segments(self, event: Event, call: Call) -> None:
        listed = (event.get("data") or {}).get("segments")
        if isinstance(listed, list) and listed:
            ids = []
            for item in listed:
                ref = str(item.get("id") if isinstance(item, Mapping) else item)
                found = await self._find_segments(call, ref)
                if not found:
                    raise PermanentError(f"infinity has no segment with segmentRef {ref} to order", status=404)
                ids.append(found[0])
        else:
            ref = str(need(event, "data.segment.id"))
            order = need(event, "data.segment.order")
            rows = await self._rows(call, "/segments", [("sort[]", "segmentOrder-asc")])
            if not any(str(r.get("segmentRef")) == ref for r in rows):
                raise PermanentError(f"infinity has no segment with segmentRef {ref} to order", status=404)
            ids = reordered([r for r in rows if r.get("segment") is not None], ref, _int(order))
        await self.fetch(call, "PUT", "/segments/order", form=order_form(ids))

    async def delete_segment(self, event: Event, call: Call) -> None:
        """Find by segmentRef, delete every match; absent or 404 is done."""
        for segment in await self._find_segments(call, str(need(event, "data.segment.id"))):
            await self._delete(call, f"/segments/{segment}")

    # -- segment groups -------------------------------------------------------------------------------

    async def list_segment_groups(self, event: Event, call: Call) -> None:
        await self._rows(call, "/segmentGroups")

    async def get_segment_group(self, event: Event, call: Call) -> None:
        name = group_name(event)
        found = await self._find_groups(call, name)
        if not found:
            raise PermanentError(f"infinity has no segment group named {name!r}", status=404)
        response = await self.fetch(call, "GET", f"/segmentGroups/{found[0]}")
        if not self.ndjson_rows(response):
            raise not_understood(self.vendor, response, "no segment group row", self.secrets)

    async def ensure_segment_group(self, event: Event, call: Call) -> None:
        await self._ensure_group(call, group_name(event))

    async def update_segment_group(self, event: Event, call: Call) -> None:
        await self._ensure_group(call, group_name(event), update=True)

    async def delete_segment_group(self, event: Event, call: Call) -> None:
        for group in await self._find_groups(call, group_name(event)):
            await self._delete(call, f"/segmentGroups/{group}")
