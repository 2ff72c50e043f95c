"""Commands packed into the Redis protocol (RESP arrays of bulk strings), for the batcher's round trips.

The same bytes as redis-py's `Connection.pack_commands`, at about a fifth of its cost: redis-py encodes every
argument through a generic `Encoder.encode` (four isinstance checks and a `repr` for each) and joins every
piece twice, which for the ingress's one script call of 23 arguments per event was the largest single item of
its profile (bench/README.md). Here the common types (bytes, str, int) go straight to bytes and the whole batch
is one buffer; the rare ones (float, memoryview, subclasses) and the refused ones (bool, None, anything else:
redis-py's DataError) take redis-py's own path. tests/store/test_resp.py compares the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis._parsers.encoders import Encoder


def pack_commands(commands: Iterable[Sequence[Any]], encoder: Encoder) -> bytes:
    """Every command (a name, then its arguments) as RESP, in one buffer. A first argument with spaces is split
    into words, as redis-py does (`"CONFIG GET"`)."""
    out: list[bytes] = []
    add = out.append
    encoding, errors = encoder.encoding, encoder.encoding_errors
    for command in commands:
        first = command[0]
        name = first.encode().split() if isinstance(first, str) else first.split() if b" " in first else [first]
        args = (*name, *command[1:]) if len(name) > 1 else command
        add(b"*%d\r\n" % len(args))
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                value = arg
            elif kind is str:
                value = arg.encode(encoding, errors)
            elif kind is int:
                value = b"%d" % arg
            else:
                value = bytes(encoder.encode(arg))  # float, memoryview, subclasses; DataError for the rest
            add(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(out)
