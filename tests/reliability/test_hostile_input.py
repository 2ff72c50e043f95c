"""Hostile input against a real uvicorn ingress: schemathesis over /openapi.json, hypothesis over headers and
bodies, a table of nasty bodies, and slow clients. Nothing answers 5xx, and nothing from an invalid request is
stored: at the end, the events in Redis are exactly those answered 202.

Figures: inputs tried, 5xx seen (must be 0), events stored from an invalid request (must be 0).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.keys import Keys
from tests.conftest import base_config
from tests.ingress.conftest import SIGNERS, sample_event, signed
from tests.reliability.support import IngressProcess, figures
from tests.support.fleet import write_config

ADMIN = {"Authorization": "Bearer admin-token-s3cret"}
BODY_TIMEOUT = 1.0
MAX_BODY = 1_048_576
EXAMPLES_PER_OPERATION = 40
SOURCES = tuple(SIGNERS)


class Tally:
    """Every answer of the module, to report inputs tried and 5xx seen, and the ids answered 202."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.by_test: Counter[str] = Counter()
        self.queued: set[tuple[str, str]] = set()

    def add(self, test: str, status: int, source: str | None = None, body: Any = None) -> None:
        self.statuses[status] += 1
        self.by_test[test] += 1
        if status == 202 and source is not None:
            self.queued.add((source, body["id"]))

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)


class Served:
    def __init__(self, ingress: IngressProcess, client: redis.Redis, keys: Keys, tally: Tally) -> None:
        self.ingress, self.url, self.redis, self.keys, self.tally = ingress, ingress.url, client, keys, tally
        self.http = httpx.Client(base_url=ingress.url, timeout=30)

    def post(self, test: str, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        response = self.http.post(f"/webhooks/{source}", content=body, headers=headers)
        self.tally.add(test, response.status_code, source, response.json() if response.status_code == 202 else None)
        return response

    def stored_events(self) -> set[tuple[str, str]]:
        prefix = f"{self.keys.namespace}:event:"
        found = set()
        for key in self.redis.scan_iter(match=f"{prefix}*", count=1000):
            source, _, event_id = key.decode().removeprefix(prefix).partition(":")
            found.add((source, event_id))
        return found


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hostile")
    namespace = f"t{uuid.uuid4().hex[:12]}"
    data = base_config(redis_url, namespace)
    data["ingress"]["body_timeout_seconds"] = BODY_TIMEOUT
    ingress = IngressProcess(write_config(tmp / "sluice.toml", data), tmp / "ingress.log")
    client = redis.Redis.from_url(redis_url)
    tally = Tally()
    s = Served(ingress, client, Keys(namespace), tally)
    try:
        yield s
        stored = s.stored_events()
        figures("hostile_input", {
            "inputs_tried": sum(tally.by_test.values()), **{f"tried_{k}": v for k, v in tally.by_test.items()},
            "status_counts": dict(sorted(tally.statuses.items())), "server_errors_5xx": tally.server_errors,
            "stored_events": len(stored), "stored_from_invalid_requests": len(stored - tally.queued),
        })
        assert tally.server_errors == 0
        assert stored == tally.queued  # nothing stored but what was answered 202
        assert "Traceback" not in (tmp / "ingress.log").read_text()
    finally:
        s.http.close()
        ingress.stop()
        for key in list(client.scan_iter(match=f"{namespace}:*", count=1000)) + list(
                client.scan_iter(match=f"arq:*:{namespace}:*", count=1000)):
            client.delete(key)
        client.close()


# -- schemathesis over the OpenAPI description --------------------------------------------------------------


def test_openapi_fuzzed_with_schemathesis(served: Served) -> None:
    """Every operation of /openapi.json, with generated parameters and bodies (admin calls with the token,
    webhooks both unsigned and correctly signed over the generated body): no 5xx, every status documented."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    undocumented: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases: list[Any] = []

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
        documented = set(operation.definition.raw["responses"]) | {"405"}
        for i, case in enumerate(cases):
            if operation.path.startswith("/webhooks/"):
                source = SOURCES[i % len(SOURCES)] if i % 2 else case.path_parameters["source"]
                body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
                headers = signed(source, body, time.time()) if i % 2 else {"content-type": "application/json"}
                response = served.post("schemathesis", source, body, headers)
            else:
                response = case.call(base_url=served.url, headers=ADMIN if operation.path.startswith("/admin")
                                     else None)
                served.tally.add("schemathesis", response.status_code)
            assert response.status_code < 500, (operation.path, case.path_parameters, response.text)
            if str(response.status_code) not in documented:
                undocumented.append(f"{operation.method.upper()} {operation.path} -> {response.status_code}")
    assert not undocumented, sorted(set(undocumented))


# -- hypothesis over headers and bodies ---------------------------------------------------------------------

header_names = st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "stripe-signature",
                                "x-shopify-hmac-sha256", "x-shopify-triggered-at", "content-type",
                                "authorization", "x-anything"])
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80) | st.sampled_from(
    ["", "v1,", "v1,AAAA", "t=1,v1=00", "application/json", "application/json; charset=utf-16", "-1",
     "99999999999999999999", "Bearer ", "Bearer admin-token-s3cret "])
def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # the stdlib: integers of any size, unlike orjson


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def test_hypothesis_headers_and_bodies(served: Served) -> None:
    """Random header sets and random bodies (raw bytes, random JSON, real events with a field replaced),
    signed or not, to known and unknown sources: answers are 2xx or a named 4xx."""

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(source=st.sampled_from([*SOURCES, "nobody", "..", "%00"]),
           headers=st.dictionaries(header_names, header_values, max_size=6),
           body=st.binary(max_size=400) | json_values.map(dumps)
           | st.tuples(st.sampled_from(["id", "type", "occurred_at", "contact", "data", "extra"]), json_values)
           .map(lambda fv: dumps({**sample_event(id=f"evt_h{uuid.uuid4().hex[:10]}"), fv[0]: fv[1]})),
           sign=st.booleans())
    def check(source: str, headers: dict[str, str], body: bytes, sign: bool) -> None:
        if sign and source in SIGNERS:
            headers = {**headers, **signed(source, body, time.time())}
        # any byte a header value may carry (not just ASCII); the client refuses surrounding whitespace
        raw = {k: v.strip(" \t").encode("latin-1") for k, v in headers.items()}
        response = served.post("hypothesis", source, body, raw)  # type: ignore[arg-type]
        assert response.status_code in {200, 202, 400, 401, 404, 413, 415}, response.text
        # HTTP the server cannot parse (e.g. a bad Content-Length) is answered by uvicorn itself, in plain text
        malformed = (response.status_code, response.content) == (400, b"Invalid HTTP request received.")
        assert response.status_code in {200, 202} or response.content.startswith(b'{"error":') or malformed, (
            response.status_code, response.headers, response.content[:200])

    check()


# -- a table of nasty bodies --------------------------------------------------------------------------------


def nasty_bodies() -> dict[str, bytes]:
    valid = sample_event(id="evt_dupkeys_first")
    deep_valid = sample_event(id="evt_deep_in_data")
    node: dict[str, Any] = {}
    deep_valid["data"]["x"] = node
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    return {
        "empty": b"",
        "one_mb_plus_one": b"{" + b" " * (MAX_BODY - 1) + b"}",
        "deep_arrays": b"[" * 100_000 + b"]" * 100_000,
        "deep_objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "deep_but_legal_in_data": orjson.dumps(deep_valid),
        "invalid_utf8": orjson.dumps(sample_event(id="evt_utf8")).replace(b"Tuit", b"T\xff\xfeit"),
        "overlong_utf8": b'{"id": "\xc0\xaf"}',
        "duplicate_keys": orjson.dumps(valid)[:-1] + b', "id": "evt_dupkeys_second"}',
        "huge_integer": orjson.dumps(sample_event(id="evt_bigint")).replace(b"4500", b"9" * 5000, 1),
        "huge_float": orjson.dumps(sample_event(id="evt_bigfloat")).replace(b"4500", b"1e400", 1),
        "int_over_64_bits": orjson.dumps(sample_event(id="evt_u65")).replace(b"4500", b"18446744073709551616", 1),
        "raw_nul_in_string": orjson.dumps(sample_event(id="evt_nul")).replace(b"Tuit", b"Tu\x00it"),
        "escaped_nul_in_id": orjson.dumps(sample_event(id="evt_\u0000nul")),
        "escaped_nul_in_name": orjson.dumps(sample_event(id="evt_nul_name")).replace(b"Tuit", b"Tu\\u0000it"),
        "nul_bytes_only": b"\x00" * 1000,
        "lone_surrogate": orjson.dumps(sample_event(id="evt_surrogate")).replace(b"Tuit", b"\\ud800"),
        "bom_prefixed": b"\xef\xbb\xbf" + orjson.dumps(sample_event(id="evt_bom")),
        "json_scalar": b"42",
        "json_null": b"null",
        "not_json": b"<xml/>",
    }


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_nasty_bodies(served: Served, chunked: bool) -> None:
    """Each nasty body, signed and unsigned, to each source, sent with a Content-Length and chunked."""
    answers: dict[str, set[int]] = {}
    for name, body in nasty_bodies().items():
        for source in SOURCES:
            for sign in (True, False):
                headers = signed(source, body, time.time()) if sign else {"content-type": "application/json"}
                content: Any = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
                response = served.http.post(f"/webhooks/{source}", content=content, headers=headers)
                served.tally.add("nasty_bodies", response.status_code, source,
                                 response.json() if response.status_code == 202 else None)
                answers.setdefault(name, set()).add(response.status_code)
                assert response.status_code < 500, (name, response.text)
                if not sign:
                    assert response.status_code in (401, 413), (name, response.status_code)
    print(f"\nnasty bodies ({'chunked' if chunked else 'content-length'}):",
          {k: sorted(v) for k, v in answers.items()})
    assert answers["one_mb_plus_one"] == {413}
    for name in ("empty", "deep_arrays", "deep_objects", "invalid_utf8", "overlong_utf8", "huge_integer",
                 "huge_float", "int_over_64_bits", "raw_nul_in_string", "escaped_nul_in_id", "nul_bytes_only",
                 "lone_surrogate", "json_scalar", "json_null", "not_json"):
        assert answers[name] <= {400, 401}, (name, answers[name])
    # duplicate keys are refused (a parser that keeps the first and one that keeps the last would disagree)
    assert answers["duplicate_keys"] <= {400, 401}
    for event_id in ("evt_dupkeys_first", "evt_dupkeys_second"):
        assert served.redis.get(served.keys.event("shopfront", event_id)) is None


# -- slow clients --------------------------------------------------------------------------------------------


def trickle(url: str, body: bytes, headers: dict[str, str], interval: float,
            limit: float) -> tuple[bytes, float, float]:
    """Send the headers, then the body a byte every `interval` s, reading the answer as soon as it comes.
    Returns the answer, when its first bytes came and when the server closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    began = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=limit) as sock:
        sock.sendall(f"POST /webhooks/shopfront HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(body)}\r\n"
                     f"{head}\r\n".encode())
        sock.setblocking(False)
        answer = b""
        answered = limit
        for i in range(len(body)):
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                answered = time.monotonic() - began
                break
            if time.monotonic() - began > limit:
                break
            try:
                sock.send(body[i:i + 1])
            except OSError:
                break
            time.sleep(interval)
        sock.setblocking(True)
        sock.settimeout(max(0.1, limit - (time.monotonic() - began)))
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, OSError):
            pass
    return answer, answered, time.monotonic() - began


def test_trickled_body_times_out(served: Served) -> None:
    """A signed, valid body sent a byte every 20 ms (about 10 s in all) is cut off at the body deadline
    (1 s here) with 408 request_timeout and nothing stored; meanwhile other requests are served."""
    body = orjson.dumps(sample_event(id="evt_trickled"))
    headers = signed("shopfront", body, time.time())
    other: list[float] = []

    def meanwhile() -> None:
        for _ in range(5):
            t = time.monotonic()
            assert served.http.get("/healthz").status_code == 200
            other.append(time.monotonic() - t)
            time.sleep(0.1)

    thread = threading.Thread(target=meanwhile)
    thread.start()
    answer, took, closed = trickle(served.url, body, headers, 0.02, 10.0)
    thread.join()
    served.tally.add("slow_clients", int(answer.split(b" ", 2)[1]) if answer else 0)
    figures("slow_client", {"body_bytes": len(body), "answer": answer.split(b"\r\n", 1)[0].decode(),
                            "answered_after_s": round(took, 2), "closed_after_s": round(closed, 2),
                            "body_timeout_s": BODY_TIMEOUT,
                            "healthz_meanwhile_max_ms": round(max(other) * 1000, 1)})
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"error":"request_timeout"' in answer
    assert BODY_TIMEOUT <= took < BODY_TIMEOUT + 1
    assert closed < BODY_TIMEOUT + 1.5  # the connection is not held open for the rest of the body
    assert served.redis.get(served.keys.event("shopfront", "evt_trickled")) is None
    assert max(other) < 0.5


def test_stalled_body_times_out(served: Served) -> None:
    """A client that sends half its body and then nothing at all gets 408 at the deadline too."""
    body = orjson.dumps(sample_event(id="evt_stalled"))
    headers = signed("shopfront", body, time.time())
    host, port = served.url.removeprefix("http://").split(":")
    began = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /webhooks/shopfront HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{head}\r\n"
                     .encode() + body[: len(body) // 2])
        answer = sock.recv(65536)
        took = time.monotonic() - began
    served.tally.add("slow_clients", int(answer.split(b" ", 2)[1]))
    assert answer.startswith(b"HTTP/1.1 408 ") and BODY_TIMEOUT <= took < BODY_TIMEOUT + 2
