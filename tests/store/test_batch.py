"""The pipeline batcher: concurrent submissions share a round trip, each gets its own replies."""

import asyncio
import contextlib

import pytest
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.batch import PipelineBatcher


async def test_each_caller_gets_its_own_replies(redis_client, namespace) -> None:
    batcher = PipelineBatcher(redis_client)

    async def bump(i: int) -> list:
        def queue(pipe) -> int:
            pipe.incr(f"{namespace}:n")
            pipe.set(f"{namespace}:k{i}", i)
            return 2

        return await batcher.submit(queue)

    results = await asyncio.gather(*(bump(i) for i in range(100)))
    assert sorted(r[0] for r in results) == list(range(1, 101))
    assert all(r[1] is True for r in results)


async def test_an_error_reply_is_raised_to_its_caller_only(redis_client, namespace) -> None:
    batcher = PipelineBatcher(redis_client)
    await redis_client.set(f"{namespace}:str", "x")

    def bad(pipe) -> int:
        pipe.incr(f"{namespace}:str")
        return 1

    def good(pipe) -> int:
        pipe.incr(f"{namespace}:ok")
        return 1

    outcome = await asyncio.gather(batcher.submit(bad), batcher.submit(good), return_exceptions=True)
    assert isinstance(outcome[0], ResponseError) and outcome[1] == [1]


async def test_redis_down_fails_every_caller() -> None:
    client = aredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    batcher = PipelineBatcher(client)
    with pytest.raises(RedisConnectionError):
        await batcher.submit(lambda pipe: pipe.ping() and 1)
    await client.aclose()


async def test_a_forgotten_script_is_loaded_and_only_its_command_sent_again() -> None:
    """NOSCRIPT means the script did not run: it alone is sent again; commands beside it run once.
    (A private Redis: SCRIPT FLUSH must not touch the shared one.)"""
    from store.batch import queue_script
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        client = aredis.Redis.from_url(server.url)
        batcher = PipelineBatcher(client)
        script = client.register_script("return redis.call('INCR', KEYS[1])")

        def queue(pipe) -> int:
            pipe.incr("beside")
            return 1 + queue_script(pipe, script, ["scripted"], [])

        assert await batcher.submit(queue) == [1, 1]  # never loaded before: loaded on demand
        await client.script_flush()
        assert await batcher.submit(queue) == [2, 2]
        assert int(await client.get("beside")) == 2
        await client.aclose()


async def test_counters_of_a_batch_are_summed_into_one_increment_each(redis_client, namespace) -> None:
    batcher = PipelineBatcher(redis_client)
    key = f"{namespace}:metrics"
    sent: list[int] = []
    round_trip = PipelineBatcher._round_trip

    async def counting(self, pipe):  # how many commands each round trip carries
        sent.append(len(pipe.command_stack))
        return await round_trip(self, pipe)

    def queue(pipe) -> int:
        pipe.incr(f"{namespace}:writes")
        return 1

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PipelineBatcher, "_round_trip", counting)
        replies = await asyncio.gather(*(batcher.submit(queue, counters={(key, "a"): 1, (key, "b"): 2})
                                         for _ in range(50)))
    assert sorted(r[0] for r in replies) == list(range(1, 51))  # each caller: its own reply, no counter's
    assert await redis_client.hgetall(key) == {b"a": b"50", b"b": b"100"}
    assert 50 < sum(sent) < 50 * 3  # the increments were summed, not sent once per caller


async def test_a_redis_that_does_not_answer_times_out_the_round_trip_and_drops_the_connection() -> None:
    """One deadline (the client's socket timeout) covers the whole round trip; the half-used connection is
    closed, so the next round trip cannot read this one's late replies."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # no CLIENT SETINFO on connect (it would wait for an answer before the batcher's round trip starts)
    client = aredis.Redis(host="127.0.0.1", port=port, socket_timeout=0.2, lib_name=None, lib_version=None)
    batcher = PipelineBatcher(client)
    with pytest.raises(RedisTimeoutError):
        await batcher.submit(lambda pipe: pipe.ping() and 1)
    assert batcher._connection is None  # dropped: the next round trip takes another (and finds the primary anew)
    assert not any(conn.is_connected for conn in client.connection_pool._available_connections)
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()
    await client.aclose()


async def test_the_patient_client_rides_out_a_restart_between_round_trips() -> None:
    from store.connection import worker_redis
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        client = worker_redis(server.url)
        batcher = PipelineBatcher(client)
        assert await batcher.submit(lambda pipe: pipe.incr("n") and 1) == [1]
        await client.execute_command("CLIENT", "KILL", "TYPE", "normal")  # every connection, the batcher's too
        assert await batcher.submit(lambda pipe: pipe.incr("n") and 1) == [2]
        await client.aclose()


async def test_a_connection_redis_closed_while_idle_is_replaced_before_use() -> None:
    """The ingress's client does not retry: after a Redis restart, the first webhook must not pay for the
    connection Redis closed while nothing was sent."""
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        client = aredis.Redis.from_url(server.url, socket_timeout=2)  # no retries, as the ingress's
        batcher = PipelineBatcher(client, idle_check_seconds=0)  # every round trip counts as after idling
        assert await batcher.submit(lambda pipe: pipe.incr("n") and 1) == [1]
        await client.execute_command("CLIENT", "KILL", "TYPE", "normal")
        assert await batcher.submit(lambda pipe: pipe.incr("n") and 1) == [2]
        await client.aclose()


async def test_a_batch_resent_after_its_reply_was_lost_counts_once(namespace) -> None:
    """The connection drops after Redis ran the batch and before its reply arrived: the patient client sends
    the batch again, and its counters (and scripts) must not apply twice."""
    from store.connection import worker_redis
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        dropped: list[bool] = []
        writers: list[asyncio.StreamWriter] = []

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", server.port)
            writers.extend((writer, up_writer))

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, replies: bool) -> None:
                while data := await src.read(65536):
                    if replies and b"applied" in seen and not dropped:
                        dropped.append(True)  # Redis ran the batch; its answer never arrives
                        writer.close()
                        up_writer.close()
                        return
                    dst.write(data)
                    await dst.drain()

            seen = bytearray()

            async def client_side() -> None:
                while data := await reader.read(65536):
                    seen.extend(data)
                    up_writer.write(data)
                    await up_writer.drain()

            await asyncio.gather(client_side(), pump(up_reader, writer, replies=True), return_exceptions=True)

        listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        client = worker_redis(f"redis://127.0.0.1:{port}/0")
        batcher = PipelineBatcher(client)
        key = f"{namespace}:metrics"
        assert await batcher.submit(lambda pipe: pipe.ping() and 1) == [True]  # connected through the proxy
        replies = await batcher.submit(lambda pipe: pipe.set(f"{namespace}:applied", "yes") and 1,
                                       counters={(key, "calls"): 3})
        assert dropped and replies == [True]
        direct = aredis.Redis.from_url(server.url)
        assert await direct.hgetall(key) == {b"calls": b"3"}
        await direct.aclose()
        await client.aclose()
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        listener.close()
        await listener.wait_closed()


async def test_a_cancelled_flusher_does_not_cancel_the_others_of_its_batch(redis_client, namespace) -> None:
    """The caller whose task sends a round trip is cancelled mid-way: the others of its batch get a connection
    error (their commands may have run), never a cancellation that is not theirs."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    batcher = PipelineBatcher(redis_client)
    gate = asyncio.Event()
    round_trip = PipelineBatcher._round_trip

    async def slow(self, pipe):
        await gate.wait()
        return await round_trip(self, pipe)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PipelineBatcher, "_round_trip", slow)
        flusher = asyncio.ensure_future(batcher.submit(lambda pipe: pipe.incr(f"{namespace}:a") and 1))
        await asyncio.sleep(0)
        assert batcher._busy
        flusher.cancel()
        rider = asyncio.ensure_future(batcher.submit(lambda pipe: pipe.incr(f"{namespace}:b") and 1))
        with pytest.raises(asyncio.CancelledError):
            await flusher
        gate.set()
        assert await rider == [1] or isinstance(rider.exception(), RedisConnectionError)
