"""Every Redis client of sluice, built in one place from `redis_url` and `[redis]` (SPEC section 2), so that web,
worker, CLI and `dev.py up` read the settings alike.

The URL is read by redis-py's own `from_url` parsing: percent-decoded user and password, `rediss://` (TLS, with
`ssl_cert_reqs`, `ssl_ca_certs`, `ssl_check_hostname` query parameters), `unix://`. With `[redis] sentinels`,
the primary is found through Sentinel (redis-py's `SentinelConnectionPool`); the user, password, database and TLS
settings of the URL still apply to it, and the sentinels are reached over TLS too when the URL says `rediss://`.

Clients differ only in their patience. Long-running workers retry a command that failed with a connection error
with exponential backoff for about 30 s, so they ride out a Redis restart or a fail-over; the ingress and the
CLI try once and fail fast (the ingress answers 503).

Following a fail-over:
- a `READONLY` answer means the node is a replica now: the connection is dropped, so the next one is made to the
  primary anew (the sentinels asked again, a managed endpoint's name resolved again), and the command fails
  with a ConnectionError, which the retry policy retries (`store.batch` reads READONLY as a reply instead, and
  sends again exactly the commands refused);
- a dropped connection (a dead primary, Sentinel's CLIENT KILL) is made again the same way;
- making a connection is ONE attempt, with no retry of its own: redis-py nests a connect retry inside the
  command retry (and, for Sentinel, inside another retry), which with a patient policy means minutes of retries
  against the dead address before the sentinels are asked again. Patience is applied once, at the command
  level (and where the pool hands out a connection, which redis-py does outside the command's retry).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, RedisError, TimeoutError

from config.settings import RedisSettings, Settings
from core.errors import ConfigError

T = TypeVar("T")

RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]

SENTINEL_TIMEOUT = 1.0
"""Connect and reply timeout towards a sentinel: a dead one must not hold up asking the next."""


def patient_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=20)


class PrimaryMoved(ConnectionError):
    """A node answered READONLY: it is a replica now, and the primary is elsewhere."""


class _PrimaryConnection(AbstractConnection):
    """A connection to the primary that follows a fail-over (module docstring)."""

    readonly_is_reply = False
    """Set by a reader that handles READONLY itself (store.batch): the error is raised as redis-py's ReadOnlyError
    and the connection is left alone."""

    async def connect(self) -> None:
        patient, self.retry = self.retry, Retry(NoBackoff(), 0)
        try:
            await super().connect()
        finally:
            self.retry = patient

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            # AbstractConnection's own reader: SentinelManagedConnection's would turn READONLY into an error too
            return await AbstractConnection.read_response(self, *args, **kwargs)
        except ReadOnlyError as exc:
            if self.readonly_is_reply:
                raise
            await self.disconnect()
            raise PrimaryMoved(f"{self.host}:{self.port} is a replica now: {exc}") from exc


class PrimaryConnection(_PrimaryConnection, Connection):
    pass


class PrimarySSLConnection(_PrimaryConnection, SSLConnection):
    pass


class PrimaryUnixConnection(_PrimaryConnection, UnixDomainSocketConnection):
    host, port = "localhost", 0  # for the READONLY message


class SentinelPrimaryConnection(_PrimaryConnection, SentinelManagedConnection):
    pass


class SentinelPrimarySSLConnection(_PrimaryConnection, SentinelManagedSSLConnection):
    pass


class _PatientPool(ConnectionPool):
    async def ensure_connection(self, connection: AbstractConnection) -> None:
        """Connect under the connection's own retry policy: redis-py connects a pooled connection before, and
        outside, the command's retry."""

        async def failed(error: Exception) -> None:
            await connection.disconnect()

        await connection.retry.call_with_retry(lambda: super(_PatientPool, self).ensure_connection(connection),
                                               failed)


class PrimaryPool(_PatientPool):
    pass


class SentinelPrimaryPool(_PatientPool, SentinelConnectionPool):
    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the pool is being closed (not a new primary): the sentinels' connections too
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.connection_pool.disconnect()


_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PrimaryConnection, SSLConnection: PrimarySSLConnection,
    UnixDomainSocketConnection: PrimaryUnixConnection,
}


def url_kwargs(url: str) -> dict[str, Any]:
    """What `redis_url` says, exactly as redis-py's `from_url` reads it (connection class included)."""
    return dict(parse_url(url))


def connection_pool(url: str, options: RedisSettings, *, connect_timeout: float, socket_timeout: float,
                    patient: bool = False, health_check_interval: int = 0) -> ConnectionPool:
    """The pool of a client: timeouts first, then what the URL says (so its query parameters win, as in
    `from_url`), connections that follow a fail-over, found through Sentinel when `options` name sentinels."""
    kwargs: dict[str, Any] = {"socket_connect_timeout": connect_timeout, "socket_timeout": socket_timeout,
                              "health_check_interval": health_check_interval}
    if patient:
        kwargs.update(retry=patient_retry(), retry_on_error=list(RETRY_ON))
    kwargs.update(url_kwargs(url))
    base = kwargs.pop("connection_class", Connection)
    if not options.sentinels:
        return PrimaryPool(connection_class=_CLASSES[base], **kwargs)
    if base is UnixDomainSocketConnection:
        raise ConfigError("redis_url", "a unix:// URL cannot be used with [redis] sentinels")
    tls = base is SSLConnection
    kwargs.pop("host", None), kwargs.pop("port", None)  # the sentinels name them
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": SENTINEL_TIMEOUT, "socket_timeout": SENTINEL_TIMEOUT}
    if options.sentinel_password is not None:
        sentinel_kwargs["password"] = options.sentinel_password.get_secret_value()
    if tls:
        sentinel_kwargs.update({k: v for k, v in kwargs.items() if k.startswith("ssl_")}, ssl=True)
    manager = Sentinel(options.sentinel_addresses, sentinel_kwargs=sentinel_kwargs)
    return SentinelPrimaryPool(
        options.sentinel_master, manager,
        connection_class=SentinelPrimarySSLConnection if tls else SentinelPrimaryConnection, **kwargs,
    )


def redis_client(settings: Settings, *, connect_timeout: float, socket_timeout: float, patient: bool = False,
                 health_check_interval: int = 0, redis_class: type[Redis] = Redis, **client: Any) -> Redis:
    """A client of `settings`' Redis (`redis_class(connection_pool=...)`; `client` goes to its constructor)."""
    pool = connection_pool(settings.redis_url, settings.redis, connect_timeout=connect_timeout,
                           socket_timeout=socket_timeout, patient=patient,
                           health_check_interval=health_check_interval)
    redis = redis_class(connection_pool=pool, **client)
    redis.auto_close_connection_pool = True  # the client owns its pool, as after `from_url`: aclose() closes it
    return redis


def worker_redis(settings: Settings | str, **client: Any) -> Redis:
    """The worker's client: patient (about 30 s of backoff on connection errors). A bare URL is a plain Redis."""
    if isinstance(settings, str):
        settings = Settings(redis_url=settings)
    return redis_client(settings, connect_timeout=2, socket_timeout=30, patient=True, health_check_interval=30,
                        **client)


def cli_redis(settings: Settings) -> Redis:
    """The CLI's client: one try, generous timeouts (bulk replays move thousands of letters)."""
    return redis_client(settings, connect_timeout=3, socket_timeout=10)


def where(settings: Settings) -> str:
    """Where Redis is, for messages: the URL without its credentials (or the Sentinel master's name)."""
    if settings.redis.sentinels:
        return f"the primary {settings.redis.sentinel_master!r} of sentinels {', '.join(settings.redis.sentinels)}"
    return settings.redis_url.split("@")[-1]


class ClusterRefused(ConfigError):
    def __init__(self, settings: Settings) -> None:
        super().__init__("redis_url", f"the Redis at {where(settings)} runs in cluster mode (cluster_enabled:1); "
                                      "Redis Cluster is not supported: use one primary (with replicas, Sentinel)")


async def refuse_cluster(client: Redis, settings: Settings) -> None:
    """ClusterRefused when the Redis behind `client` is a Redis Cluster node. A Redis that cannot be reached
    passes: the caller's own retries and errors deal with that."""
    try:
        info = await client.info("cluster")
    except (RedisError, OSError):
        return
    if str(info.get("cluster_enabled", "0")) == "1":
        raise ClusterRefused(settings)


def refuse_cluster_now(settings: Settings) -> None:
    """`refuse_cluster` for synchronous start-up code."""
    _check_now(settings, lambda client: refuse_cluster(client, settings))


def answers_now(settings: Settings) -> bool:
    """Whether the Redis that `settings` lead to (through Sentinel, over TLS, ...) answers PING, for start-up
    code (`dev.py up`)."""

    async def ping(client: Redis) -> bool:
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False

    return _check_now(settings, ping)


def _check_now(settings: Settings, check: Callable[[Redis], Awaitable[T]]) -> T:
    """`check` with a fail-fast client, in a thread of its own with its own event loop (so that it also works
    where a loop is running, as in uvicorn's app factory); its result, or its exception raised here."""
    outcome: list[Any] = []

    async def run() -> None:
        client = redis_client(settings, connect_timeout=1, socket_timeout=2)
        try:
            outcome.append(await check(client))
        except Exception as exc:
            outcome.append(exc)
        finally:
            await client.aclose()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="sluice-redis-check")
    thread.start()
    thread.join()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at `url` within half a second (for start-up checks, not the hot path)."""
    try:
        client = sync_redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (sync_redis.RedisError, OSError, ValueError):
        return False
