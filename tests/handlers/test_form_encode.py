"""Form bodies and query strings byte for byte as PHP's `http_build_query` (PHP_QUERY_RFC1738, its default)
writes them. The expected strings are PHP's documented output (the php.net manual pages of
`http_build_query` and `urlencode`), carried here as data: keys and values go through `urlencode`, which keeps
`A-Z a-z 0-9 . _ -`, writes a space as `+` and every other byte of the UTF-8 text as `%XX` (upper case),
`~` included (unlike `rawurlencode`)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from handlers import infinity
from handlers.base import form_encode, php_urlencode
from sandbox.common import php_parse

# the manual's http_build_query example 1 (the null member is left out by PHP, so it is not a pair here)
DOC_SIMPLE = (
    [("foo", "bar"), ("baz", "boom"), ("cow", "milk"), ("php", "hypertext processor")],
    "foo=bar&baz=boom&cow=milk&php=hypertext+processor",
)

# the manual's example 3 (nested arrays, numeric prefix "flags_"), flattened into the pairs PHP builds
DOC_NESTED = (
    [
        ("user[name]", "Bob Smith"), ("user[age]", "47"), ("user[sex]", "M"), ("user[dob]", "5/12/1956"),
        ("pastimes[0]", "golf"), ("pastimes[1]", "opera"), ("pastimes[2]", "poker"), ("pastimes[3]", "rap"),
        ("children[bobby][age]", "12"), ("children[bobby][sex]", "M"),
        ("children[sally][age]", "8"), ("children[sally][sex]", "F"),
        ("flags_0", "CEO"),
    ],
    "user%5Bname%5D=Bob+Smith&user%5Bage%5D=47&user%5Bsex%5D=M&user%5Bdob%5D=5%2F12%2F1956"
    "&pastimes%5B0%5D=golf&pastimes%5B1%5D=opera&pastimes%5B2%5D=poker&pastimes%5B3%5D=rap"
    "&children%5Bbobby%5D%5Bage%5D=12&children%5Bbobby%5D%5Bsex%5D=M"
    "&children%5Bsally%5D%5Bage%5D=8&children%5Bsally%5D%5Bsex%5D=F&flags_0=CEO",
)


@pytest.mark.parametrize(("pairs", "expected"), [DOC_SIMPLE, DOC_NESTED], ids=["simple", "nested"])
def test_the_manuals_examples_byte_for_byte(pairs: list[tuple[str, str]], expected: str) -> None:
    """http_build_query's documented output, reproduced exactly."""
    assert form_encode(pairs) == expected


@pytest.mark.parametrize(
    ("text", "php"),
    [
        ("a[0][b]", "a%5B0%5D%5Bb%5D"),
        ("sortedSegments[]", "sortedSegments%5B%5D"),
        ("hello world", "hello+world"),
        ("a+b", "a%2Bb"),
        ("a&b=c", "a%26b%3Dc"),
        ("~tilde", "%7Etilde"),  # urlencode (RFC 1738) encodes it; rawurlencode would not
        ("keep-this_one.as is", "keep-this_one.as+is"),
        ("100%", "100%25"),
        ("café", "caf%C3%A9"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("😀", "%F0%9F%98%80"),
        ("a/b?c#d", "a%2Fb%3Fc%23d"),
        ("line\nbreak\t", "line%0Abreak%09"),
        ("!*'();:@$,", "%21%2A%27%28%29%3B%3A%40%24%2C"),
        ("", ""),
    ],
)
def test_urlencode_as_php(text: str, php: str) -> None:
    """Each character as PHP's urlencode writes it."""
    assert php_urlencode(text) == php


def test_nested_criteria_pairs_as_php_writes_them() -> None:
    """`criteria[0][field]=act` (vendors.md) goes out as `criteria%5B0%5D%5Bfield%5D=act`."""
    pairs = infinity.criteria_pairs([{"field": "act", "op": "begins", "value": "12 & up"}])
    assert form_encode(pairs) == (
        "criteria%5B0%5D%5Bfield%5D=act&criteria%5B0%5D%5Bop%5D=begins&criteria%5B0%5D%5Bvalue%5D=12+%26+up"
    )


def test_the_sandbox_reads_what_php_writes() -> None:
    """The Infinity emulator's PHP-style reading gives back the structure that was encoded."""
    segment = {"id": "vip~1", "name": "VIP & café", "order": 2,
               "criteria": [{"field": "act", "op": "begins", "value": "1 2"}, {"field": "x", "op": "eq", "value": "+"}]}
    body = form_encode(infinity.segment_form(segment, "10") + infinity.order_form(["401", "400"]))
    assert "[" not in body and "]" not in body and " " not in body and "~" not in body
    assert php_parse(parse_qsl(body, keep_blank_values=True)) == {
        "segmentName": "VIP & café", "segmentRef": "vip~1", "segmentOrder": "2", "segmentGroupId": "10",
        "criteria": [{"field": "act", "op": "begins", "value": "1 2"}, {"field": "x", "op": "eq", "value": "+"}],
        "sortedSegments": ["401", "400"],
    }


async def test_the_wire_carries_php_s_bytes(perform, sandbox) -> None:
    """Through the worker's HTTP transport to the emulator over loopback, query and body arrive as encoded
    (the transport does not let aiohttp re-quote the URL, which would send `%7E` as `~`)."""
    event = {"type": "segment.upsert", "id": "evt_1",
             "data": {"segment": {"id": "vip~1", "name": "VIP & co", "criteria": [{"field": "act", "op": "begins",
                                                                                  "value": "a b"}]}}}
    await perform("infinity", "upsert_segment", event)
    lookup, create = sandbox.state.requests
    assert lookup.query == "filter%5B%5D=segmentRef-eq-value-vip%7E1"
    assert create.body == ("segmentName=VIP+%26+co&segmentRef=vip%7E1"
                           "&criteria%5B0%5D%5Bfield%5D=act&criteria%5B0%5D%5Bop%5D=begins&criteria%5B0%5D%5Bvalue%5D=a+b")
    assert sandbox.state.snapshot()["infinity"]["segments"][0]["segmentRef"] == "vip~1"
