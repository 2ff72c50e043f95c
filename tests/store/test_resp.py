"""store/resp.py packs exactly what redis-py packs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from store.resp import pack_commands

ARG = st.binary(max_size=40) | st.text(max_size=20) | st.integers() | st.floats(allow_nan=False) | \
    st.binary(max_size=10).map(memoryview)
NAME = st.sampled_from(["EVALSHA", "SET", "CONFIG GET", b"SCRIPT LOAD", b"WAIT", "hincrby"])


def redis_py(commands: list[list[Any]], **kwargs: Any) -> bytes:
    return b"".join(bytes(chunk) for chunk in Connection(**kwargs).pack_commands(commands))


def ours(commands: list[list[Any]], **kwargs: Any) -> bytes:
    return pack_commands(commands, Connection(**kwargs).encoder)


@settings(max_examples=300, deadline=None)
@given(commands=st.lists(st.tuples(NAME, st.lists(ARG, max_size=8)).map(lambda c: [c[0], *c[1]]),
                         min_size=1, max_size=5))
def test_the_same_bytes_as_redis_py(commands: list[list[Any]]) -> None:
    assert ours(commands) == redis_py(commands)


def test_a_large_body_and_another_encoding() -> None:
    commands = [["EVALSHA", "abc", 2, "k1", "ké", b"x" * 100_000, -7, 2**70, 1.5], ["WAIT", 1, 500]]
    assert ours(commands) == redis_py(commands)
    assert ours(commands, encoding="latin-1") == redis_py(commands, encoding="latin-1")


@pytest.mark.parametrize("bad", [True, None, object(), ["list"]])
def test_what_redis_py_refuses_is_refused(bad: Any) -> None:
    with pytest.raises(DataError):
        ours([["SET", "k", bad]])


@settings(max_examples=200, deadline=None)
@given(command=st.lists(st.binary(max_size=30) | st.text(max_size=15) | st.integers(), min_size=2, max_size=12),
       data=st.data())
def test_a_template_packs_what_pack_commands_packs(command: list[Any], data: st.DataObject) -> None:
    """Template.pack encodes its variable places with its own copy of pack_commands' per-argument step (one
    function call per argument would cost more than the step): the bytes must stay the same."""
    from store.resp import Template

    command = ["EVALSHA", *command]
    constant = data.draw(st.sets(st.integers(0, len(command) - 1)))
    encoder = Connection().encoder
    template = Template(command, constant, encoder)
    assert template.pack(command).resp == pack_commands([command], encoder) == redis_py([command])
