"""Commands packed into the Redis protocol (RESP arrays of bulk strings), for the batcher's round trips.

The same bytes as redis-py's `Connection.pack_commands`, at about a third of its cost: redis-py encodes every
argument through a generic `Encoder.encode` (four isinstance checks and a `repr` for each) and joins every
piece twice, which for the ingress's one script call of 23 arguments per event was the largest single item of
its profile (bench/README.md). Here the common types (bytes, str, int) go straight to bytes and the whole batch
is one buffer; the rare ones (float, memoryview, subclasses) and the refused ones (bool, None, anything else:
redis-py's DataError) take redis-py's own path. tests/store/test_resp.py compares the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from redis._parsers.encoders import Encoder


def pack_commands(commands: Iterable[Sequence[Any]], encoder: Encoder) -> bytes:
    """Every command (a name, then its arguments) as RESP, in one buffer. A first argument with spaces is split
    into words, as redis-py does (`"CONFIG GET"`)."""
    out: list[bytes] = []
    add = out.append
    encoding, errors = encoder.encoding, encoder.encoding_errors
    for command in commands:
        if type(command) is PackedCommand:
            add(command.resp)
            continue
        first = command[0]
        name = first.encode().split() if isinstance(first, str) else first.split() if b" " in first else [first]
        args = (*name, *command[1:]) if len(name) > 1 else command
        add(b"*%d\r\n" % len(args))
        for arg in args:  # the same step as Template.pack's (tests/store/test_resp.py holds them together)
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


class PackedCommand(tuple):  # type: ignore[type-arg]
    """A command packed ahead (`resp`), queued in a pipeline like any other: the tuple holds its leading words
    (name, script SHA), which is all the reply parser and a NOSCRIPT reload read of it."""

    resp: bytes


def packed(words: tuple[Any, ...], resp: bytes) -> PackedCommand:
    command = PackedCommand(words)
    command.resp = resp
    return command


class Template:
    """A command whose arguments at some places are the same every time: a sample of the command is turned,
    once, into one bytes format with the constant places written out and `$%d\r\n%b\r\n` at the others, so
    that `pack` is one `%` of the other places' values (one C call, not a Python step per argument). The bytes
    are those `pack_commands` makes of the command (the values at the constant places are taken to be the
    sample's)."""

    def __init__(self, sample: Sequence[Any], constant: Collection[int], encoder: Encoder) -> None:
        pieces = [b"*%d\r\n" % len(sample)]
        self.places: list[int] = []
        for i, value in enumerate(sample):
            if i in constant:
                packed_value = pack_commands([[b"-", value]], encoder)[len(b"*2\r\n$1\r\n-\r\n"):]
                pieces.append(packed_value.replace(b"%", b"%%"))
            else:
                pieces.append(b"$%d\r\n%b\r\n")
                self.places.append(i)
        self.format = b"".join(pieces)
        self.encoder = encoder

    def pack(self, command: Sequence[Any]) -> PackedCommand:
        values: list[Any] = []
        add = values.append
        encoding, errors = self.encoder.encoding, self.encoder.encoding_errors
        for i in self.places:
            arg = command[i]
            kind = type(arg)
            if kind is bytes:
                value = arg
            elif kind is str:
                value = arg.encode(encoding, errors)
            elif kind is int:
                value = b"%d" % arg
            else:
                value = bytes(self.encoder.encode(arg))
            add(len(value))
            add(value)
        return packed(tuple(command[:2]), self.format % tuple(values))
