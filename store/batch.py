"""Coalescing Redis writes by group commit: while one pipeline is in flight, later commands gather, and go
together in the next one.

At low load a command is sent at once, in the caller's own task (no added latency); under load, commands
that arrive while a round trip is in flight share the next one. Each caller still awaits its own replies, so
"acknowledged" keeps its meaning: a caller resumes only after Redis answered for what it submitted.
Per-command client overhead drops from ~85 us unpipelined to ~11-20 us in pipelines of 8-32.

Round trips go over one connection the batcher keeps for its life (taken from the client's pool, so closing the
client closes it), with one deadline for the whole round trip: redis-py's own `Pipeline.execute` takes a
connection from the pool and polls it for stray data every time, and arms a timer for every single reply, which
together cost more than the commands themselves. The batcher polls its connection (and reconnects when Redis
closed it, after a restart, say) only after `idle_check_seconds` without a round trip: under load, never. The
pipeline object is still redis-py's, for queueing commands and decoding their replies (the commands are packed
by store/resp.py, the same bytes for a third of the cost); connection errors are
retried exactly as the client's pipelines are (its `retry` and `retry_on_error`): the worker's patient client
rides out a restart, the ingress's answers at once.

A round trip that fails with a connection error may have run in Redis before the connection dropped, and is
sent again whole; so everything that goes through a batcher is safe to run twice: the scripts set values,
raise them to a maximum or delete what their caller holds, and a batch's counters are added by one script
guarded by a marker of that batch (`COUNTERS_LUA`), so a resent batch does not count twice. A caller whose
task is cancelled while its round trip is in flight does not cancel the others of the batch: they get a
connection error (their commands may or may not have run), never a cancellation that is not theirs.

Scripts go out as plain EVALSHA: redis-py's own pipeline script support asks `SCRIPT EXISTS` before every
pipeline, one extra round trip per batch (the profile of bench/ingress.py showed it). A script Redis has
forgotten (a restart, SCRIPT FLUSH) answers NOSCRIPT without having run, so only those commands are sent
again, after the script is loaded.

Following a fail-over (store/connection.py): a command a replica refused (READONLY: the primary has moved) did
not run either, so the batcher drops its connection, takes another (to the primary, found anew), and sends
exactly those commands again, once. After a connection error it also drops its connection, so the next round trip
finds the primary anew.

`wait_replicas` (the ingress, `[redis] replicas_ack`): every round trip ends with one write to a fence key and one
`WAIT replicas timeout`, so one WAIT covers the whole batch, and every caller of the batch, a duplicate's too, is
answered only after the replicas acknowledged. The fence write is what covers a duplicate: WAIT waits for this
connection's own last write, and a batch of duplicates writes nothing, while the first copy of such an event may
have been written by another connection (or ingress) and not be on any replica yet; the fence moves this
connection's last write to now, past it. (Redis 7.0 already counts a script call as a write for WAIT, even one
that wrote nothing, but a connection that only read gets an immediate answer, and no server promises the
former.) Fewer replicas than asked: the whole batch fails with ReplicasNotAcknowledged, and the connection is
dropped.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.resp import PackedCommand, pack_commands

Queue = Callable[[Pipeline], int]
"""Adds commands to a pipeline and returns how many it added."""

Counters = dict[tuple[str, str], int]
"""Increments of hash fields, (key, field) -> amount: summed over a whole batch, added by one script per hash."""

_Entry = tuple[Queue, "asyncio.Future[list[Any]]", Counters | None]

_SCRIPTS: dict[str, str] = {}
"""Source of every script queued so far, by SHA1 (a content hash, so one table serves every client)."""

COUNTERS_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
"""KEYS: the batch's marker, the counters' hash. ARGV: the marker's TTL (ms), then field, amount pairs."""

COUNTERS_MARKER_MS = 60_000
"""Longer than any resend of one round trip (the worker's patient retry gives up after about 35 s)."""


@dataclass(frozen=True, slots=True)
class WaitReplicas:
    """`WAIT replicas timeout_ms` after each round trip, after a write to `fence_key` (module docstring)."""

    replicas: int
    timeout_ms: int
    fence_key: str


class ReplicasNotAcknowledged(RedisError):
    """WAIT answered fewer replicas than asked: what the batch wrote may be lost with this primary."""


class PipelineBatcher:
    def __init__(self, redis: Redis, *, max_batch: int = 256, idle_check_seconds: float = 1.0,
                 wait_replicas: WaitReplicas | None = None) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.timeout: float | None = redis.connection_pool.connection_kwargs.get("socket_timeout")
        """The deadline of one whole round trip (the client's socket timeout, plus WAIT's timeout)."""
        self.wait = wait_replicas
        if wait_replicas is not None and self.timeout is not None:
            self.timeout += wait_replicas.timeout_ms / 1000
        self.idle_check_seconds = idle_check_seconds
        self._connection: AbstractConnection | None = None
        self._last_round_trip = float("-inf")
        self._pending: list[_Entry] = []
        self._busy = False
        self._counters = redis.register_script(COUNTERS_LUA)

    async def submit(self, queue: Queue, counters: Counters | None = None) -> list[Any]:
        """Run the commands that `queue` adds, in a shared pipeline; their replies, in order.
        A reply that is an error is raised here (redis-py's exception).

        `counters` (metrics) go in the same pipeline, summed with the other callers' of the batch: under load
        a hundred call records add one script call, not three hundred HINCRBYs. Their replies are not checked:
        a counter must never fail a write it accompanies."""
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((queue, fut, counters))
        if not self._busy:
            self._busy = True
            try:
                while not fut.done() and self._pending:
                    await self._flush(self._take())
            except BaseException:
                if fut.done() and not fut.cancelled():
                    fut.exception()  # this caller raises its own error; its future's is not left unread
                raise
            finally:
                self._busy = False
                if self._pending:  # what gathered meanwhile goes on in the background
                    self._busy = True
                    asyncio.ensure_future(self._drain())
        results = await fut
        for item in results:
            if isinstance(item, Exception):
                raise item
        return results

    def _take(self) -> list[_Entry]:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        return batch

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._flush(self._take())
        finally:
            self._busy = False

    async def _flush(self, batch: list[_Entry]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            counts = [queue(pipe) for queue, _, _ in batch]
            self._queue_counters(pipe, batch)
            replies = await self._send(pipe)
        except Exception as exc:  # connection errors fail every caller of this round trip
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException:  # the flushing caller was cancelled: the others' commands may have run
            interrupted = RedisConnectionError("the round trip was interrupted before Redis answered")
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(interrupted)
            raise
        start = 0
        for (_, fut, _), count in zip(batch, counts, strict=True):
            if not fut.done():
                fut.set_result(list(replies[start : start + count]))
            start += count

    def _queue_counters(self, pipe: Pipeline, batch: list[_Entry]) -> None:
        """The batch's counters, summed, as one guarded script per hash (after every caller's commands)."""
        totals: dict[str, dict[str, int]] = {}
        for _, _, counters in batch:
            for (key, field), amount in (counters or {}).items():
                fields = totals.setdefault(key, {})
                fields[field] = fields.get(field, 0) + amount
        if not totals:
            return
        marker = secrets.token_hex(8)
        for key, fields in totals.items():
            args: list[Any] = [COUNTERS_MARKER_MS]
            for field, amount in fields.items():
                args += (field, amount)
            queue_script(pipe, self._counters, [f"{key}:batch:{marker}", key], args)

    async def _send(self, pipe: Pipeline) -> list[Any]:
        """The round trip, then what it may need: commands a replica refused sent to the primary, scripts that
        Redis did not know loaded and their commands sent again."""
        try:
            replies = await self._acknowledged_round_trip(pipe)
            if any(isinstance(r, ReadOnlyError) for r in replies):
                replies = await self._rerun_on_primary(pipe, replies)
            if any(isinstance(r, NoScriptError) for r in replies):
                replies = await self._reload_and_rerun(pipe, replies)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await self._drop_connection()  # the next round trip finds the primary anew
            raise
        return replies

    async def _acknowledged_round_trip(self, pipe: Pipeline) -> list[Any]:
        """`_round_trip`, ended with the fence write and WAIT when `wait_replicas` is set; ReplicasNotAcknowledged
        when fewer replicas than asked have what it wrote."""
        if self.wait is None:
            return await self._round_trip(pipe)
        count = len(pipe.command_stack)
        pipe.set(self.wait.fence_key, b"1", ex=3600)
        pipe.execute_command("WAIT", self.wait.replicas, self.wait.timeout_ms)
        try:
            replies = await self._round_trip(pipe)
        finally:
            del pipe.command_stack[count:]
        acked, replies = replies[-1], replies[:count]
        if any(isinstance(r, (ReadOnlyError, NoScriptError)) for r in replies):
            # those are sent again, in a round trip whose own fence and WAIT cover this one's writes too (the
            # fence puts the connection's last write after everything the primary has); a replica wrote nothing
            return replies
        if isinstance(acked, Exception) or acked < self.wait.replicas:
            await self._drop_connection()  # an isolated old primary keeps no connection of ours
            raise ReplicasNotAcknowledged(f"{acked if isinstance(acked, int) else 0} of {self.wait.replicas} replicas "
                                          f"acknowledged within {self.wait.timeout_ms} ms")
        return replies

    async def _rerun_on_primary(self, pipe: Pipeline, replies: list[Any]) -> list[Any]:
        """READONLY: the node is a replica now. Those commands did not run: drop the connection (and the pool's
        idle ones, all to the same node), then send exactly them again, once, on a connection to the primary."""
        await self._drop_connection()
        await self.redis.connection_pool.disconnect(inuse_connections=False)
        refused = [i for i, r in enumerate(replies) if isinstance(r, ReadOnlyError)]
        again = self.redis.pipeline(transaction=False)
        again.command_stack = [pipe.command_stack[i] for i in refused]
        replies = list(replies)
        for i, reply in zip(refused, await self._acknowledged_round_trip(again), strict=True):
            replies[i] = reply
        return replies

    async def _drop_connection(self) -> None:
        """Close the kept connection and give it back: the next round trip takes another from the pool."""
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.socket_timeout = self.redis.connection_pool.connection_kwargs.get("socket_timeout")
            conn.readonly_is_reply = False  # type: ignore[attr-defined]
            await conn.disconnect()
            await self.redis.connection_pool.release(conn)

    async def _round_trip(self, pipe: Pipeline) -> list[Any]:
        """Send the pipeline's commands and read every reply (an error reply is returned, not raised)."""
        now = asyncio.get_running_loop().time()
        if self._connection is None:
            conn = await self.redis.connection_pool.get_connection()  # kept until dropped (_drop_connection)
            conn.socket_timeout = None  # no per-send task and per-reply timer: `self.timeout` covers both
            conn.readonly_is_reply = True  # type: ignore[attr-defined]  # a replica's refusal: see _rerun_on_primary
            self._connection = conn
        elif now - self._last_round_trip >= self.idle_check_seconds:
            await self.redis.connection_pool.ensure_connection(self._connection)  # closed while idle: reconnect
        conn = self._connection
        self._last_round_trip = now
        packed = pack_commands([args for args, _ in pipe.command_stack], conn.encoder)

        async def attempt() -> list[Any]:
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.send_packed_command(packed, check_health=False)
                    replies: list[Any] = []
                    for args, options in pipe.command_stack:
                        try:
                            replies.append(await pipe.parse_response(conn, args[0], **options))
                        except ResponseError as exc:
                            replies.append(exc)
                    return replies
            except TimeoutError:  # cut mid-round-trip, redis-py has closed the connection: nothing is left to read
                raise RedisTimeoutError(f"Timeout reading from {conn.host}:{conn.port}") from None

        async def failed(error: Exception) -> None:
            await conn.disconnect()
            if not isinstance(error, tuple(conn.retry_on_error or ())):
                raise error

        return await conn.retry.call_with_retry(attempt, failed)  # type: ignore[no-any-return]

    async def _reload_and_rerun(self, pipe: Pipeline, replies: list[Any]) -> list[Any]:
        """Load the scripts Redis did not know, then send again exactly the commands that answered NOSCRIPT
        (they did not run; everything else did, and is not repeated)."""
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        commands = [pipe.command_stack[i] for i in missing]
        for sha in {args[1] for args, _ in commands}:
            await self.redis.script_load(_SCRIPTS[sha if isinstance(sha, str) else sha.decode()])
        again = self.redis.pipeline(transaction=False)
        again.command_stack = commands
        replies = list(replies)
        for i, reply in zip(missing, await self._acknowledged_round_trip(again), strict=True):
            replies[i] = reply
        return replies


def queue_packed(pipe: Pipeline, script: Any, command: PackedCommand) -> int:
    """Add a script's EVALSHA packed ahead (store/resp.py's Template) to a pipeline, like `queue_script`."""
    _SCRIPTS[script.sha] = script.script
    pipe.command_stack.append((command, {}))
    return 1


def queue_script(pipe: Pipeline, script: Any, keys: list[str], args: list[Any]) -> int:
    """Add a registered Lua script to a pipeline as EVALSHA (loaded on demand if Redis lost it)."""
    _SCRIPTS[script.sha] = script.script
    pipe.evalsha(script.sha, len(keys), *keys, *args)
    return 1
