"""A managed HA endpoint: one address that the service points at the new primary after a fail-over, while
connections made before it still reach the old one, a replica now (a DNS name moved, a proxy re-pointed). A
plain `redis_url`, no Sentinel: a READONLY answer must send the client to the address again."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cli.samples import sample_event
from config.settings import settings_from_mapping
from ingress.app import create_app
from store.connection import worker_redis
from tests.conftest import base_config
from tests.deploy.test_replicas_ack import linked, post
from tests.ingress.conftest import serve
from tests.support.fleet import wait_until
from tests.support.redis_server import RedisServer


class Endpoint:
    """A TCP proxy on loopback whose new connections go to `target`; connections already made stay where
    they are."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._client, "127.0.0.1", 0),
                                                       self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        self.writers: list[asyncio.StreamWriter] = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    with RedisServer() as primary, RedisServer(replica_of=primary.port) as replica:
        wait_until(lambda: linked(primary, replica), 10, 0.02, "the replica to sync")
        yield primary, replica


def fail_over(old: RedisServer, new: RedisServer, endpoint: Endpoint) -> None:
    """The replica becomes the primary, the old primary its replica, the endpoint points at the new one."""
    promoted, demoted = redis.Redis(port=new.port), redis.Redis(port=old.port)
    promoted.replicaof("NO", "ONE")
    demoted.replicaof("127.0.0.1", new.port)
    endpoint.target = new.port
    wait_until(lambda: demoted.info("replication")["role"] == "slave", 10, 0.02, "the old primary to follow")
    promoted.close()
    demoted.close()


def test_the_ingress_follows_a_moved_endpoint_without_a_503(servers: tuple[RedisServer, RedisServer]) -> None:
    """The batcher's kept connection reaches the demoted node, which answers READONLY: the batcher takes a new
    connection through the endpoint and sends the refused scripts again, so the webhook still gets its 202."""
    primary, replica = servers
    endpoint = Endpoint(primary.port)
    try:
        url = f"redis://127.0.0.1:{endpoint.port}/0"
        settings = settings_from_mapping(base_config(url, "endpoint"), {})

        async def flow() -> list[int]:
            async with serve(create_app(settings)) as http:
                first = await post(http, sample_event("signup", time.time(), "evt_e1"))
                await asyncio.to_thread(fail_over, primary, replica, endpoint)
                second = await post(http, sample_event("signup", time.time(), "evt_e2"))
                return [first[0], second[0]]

        assert asyncio.run(flow()) == [202, 202]
        on_new = redis.Redis(port=replica.port)
        assert on_new.exists("endpoint:event:shopfront:evt_e2")
        on_new.close()
    finally:
        endpoint.close()


async def test_a_worker_command_follows_a_moved_endpoint(servers: tuple[RedisServer, RedisServer]) -> None:
    """The worker's client: READONLY drops the connection and the command is retried, on the new primary."""
    primary, replica = servers
    endpoint = Endpoint(primary.port)
    client = worker_redis(f"redis://127.0.0.1:{endpoint.port}/0")
    try:
        assert await client.incr("n") == 1
        await asyncio.to_thread(fail_over, primary, replica, endpoint)
        assert await client.incr("n") == 2
        assert redis.Redis(port=replica.port).get("n") == b"2"
    finally:
        await client.aclose()
        endpoint.close()
