"""Typed, immutable settings built once from the TOML file and the environment, then passed down.

`load_settings(environ)` reads the file named by SLUICE_CONFIG; `settings_from_mapping(data, environ)` builds
settings from an already-parsed mapping (tests use it). Every problem becomes one ConfigError that names the
key; entry points turn it into one line on stderr via `load_or_exit`.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator,
    model_validator,
)

from config.timing import MAX_RATE_WAIT, Timing
from core.errors import ConfigError
from core.routing import DEFAULT_ROUTES, EVENT_TYPES, is_operation

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IngressSettings(_Model):
    max_body_bytes: int = Field(1_048_576, gt=0)
    tolerance_seconds: int = Field(300, gt=0)
    admin_token: SecretStr | None = None
    body_timeout_seconds: float = Field(10, gt=0, le=300)  # the whole body must arrive within this, else 408

    @field_validator("admin_token")
    @classmethod
    def _empty_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None


class SourceSettings(_Model):
    scheme: Literal["standard-webhooks", "stripe", "shopify"]
    secrets: tuple[SecretStr, ...] = Field(min_length=1)

    @field_validator("secrets")
    @classmethod
    def _no_empty_secret(cls, v: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(not s.get_secret_value() for s in v):
            raise ValueError("a secret may not be empty")
        return v


class VendorSettings(_Model):
    base_url: str = Field(pattern=r"^https?://\S+$")
    rate_per_second: float | None = Field(None, gt=0)


class SegMetricsSettings(VendorSettings):
    api_key: SecretStr
    account_id: str = Field(min_length=1)
    integration_id: str = Field(min_length=1)
    ads_integration_id: str | None = None


class SalesmachineSettings(VendorSettings):
    api_token: SecretStr
    api_secret: SecretStr = SecretStr("")
    api_token_v2: SecretStr = SecretStr("")


class PersonaClickSettings(VendorSettings):
    shop_id: str = Field(min_length=1)
    shop_secret: SecretStr
    segments: dict[str, int] = Field(default_factory=dict)


class InfinitySettings(VendorSettings):
    igrp: int = Field(ge=1)
    username: str = Field(min_length=1)
    password: SecretStr


class VendorsSettings(_Model):
    segmetrics: SegMetricsSettings | None = None
    salesmachine: SalesmachineSettings | None = None
    personaclick: PersonaClickSettings | None = None
    infinity: InfinitySettings | None = None


# Documented default limits (vendors.md); a vendor's `rate_per_second` overrides its entry.
DEFAULT_RATE_PER_SECOND: Mapping[str, float] = {"salesmachine": 900 / 300}


class DeliverySettings(_Model):
    timeout_seconds: float = Field(10, gt=0, le=300)
    schedule_seconds: tuple[float, ...] = Field(
        (5, 30, 120, 600, 1800, 7200, 21600, 43200, 86400), min_length=1
    )
    dedupe_seconds: int = Field(604_800, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)
    max_retry_after_seconds: float = Field(3600, gt=0)  # a vendor's Retry-After is honoured up to this
    ordering: bool = True  # SPEC section 5 rule 8

    @field_validator("schedule_seconds")
    @classmethod
    def _positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s <= 0 for s in v):
            raise ValueError("every wait must be greater than 0")
        return v

    @property
    def max_tries(self) -> int:
        return len(self.schedule_seconds) + 1


class WorkerSettings(_Model):
    max_jobs: int = Field(200, gt=0)
    poll_delay_seconds: float = Field(0.01, gt=0)
    rate_max_wait_seconds: float = Field(2.0, ge=0)
    reconcile_seconds: float = Field(30.0, gt=0, le=3600)  # how often a worker looks for events left without a job


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{value!r} is not "host:port"')
    return value


class RedisSettings(_Model):
    """`[redis]`: how to reach Redis beyond a plain `redis_url` (Sentinel) and how durable a 2xx is."""

    sentinels: tuple[Annotated[str, AfterValidator(_host_port)], ...] = ()
    sentinel_master: str | None = Field(None, min_length=1, validate_default=True)
    sentinel_password: SecretStr | None = None
    replicas_ack: int = Field(0, ge=0, le=16)
    replicas_ack_timeout_ms: int = Field(500, gt=0, le=60_000)

    @field_validator("sentinel_master")
    @classmethod
    def _master_with_sentinels(cls, v: str | None, info: ValidationInfo) -> str | None:
        sentinels = info.data.get("sentinels", ())
        if sentinels and not v:
            raise ValueError("required when sentinels are given")
        if v and not sentinels:
            raise ValueError("given without sentinels")
        return v

    @field_validator("sentinel_password")
    @classmethod
    def _no_password_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(host.strip("[]"), int(port)) for host, _, port in (s.rpartition(":") for s in self.sentinels)]


class Settings(_Model):
    redis_url: str = Field("redis://localhost:6379/0", pattern=r"^(redis|rediss|unix)://")
    namespace: str = Field("sluice", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    ingress: IngressSettings = IngressSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    vendors: VendorsSettings = VendorsSettings()
    delivery: DeliverySettings = DeliverySettings()
    worker: WorkerSettings = WorkerSettings()
    redis: RedisSettings = RedisSettings()
    routes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, v: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"source name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
        return v

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for event_type, names in v.items():
            if event_type not in EVENT_TYPES:
                raise ValueError(f"unknown event type {event_type!r}")
            for name in names:
                if not is_operation(name):
                    raise ValueError(f"{event_type}: unknown operation {name!r}")
        return v

    @field_validator("redis")
    @classmethod
    def _sentinels_over_tcp(cls, v: RedisSettings, info: ValidationInfo) -> RedisSettings:
        if v.sentinels and str(info.data.get("redis_url", "")).startswith("unix://"):
            raise ValueError("sentinels: cannot be used with a unix:// redis_url")
        return v

    @model_validator(mode="after")
    def _keeps_pickup_rule(self) -> Settings:
        timing = Timing.of(self.delivery.timeout_seconds, self.worker.rate_max_wait_seconds)
        if not timing.keeps_pickup_rule(self.delivery.timeout_seconds):
            raise ConfigError(
                "worker.rate_max_wait_seconds",
                f"must be at most {MAX_RATE_WAIT:g}: a dead worker's job must be taken up within "
                "delivery.timeout_seconds + 30 s (SPEC section 5 rule 5)",
            )
        return self

    @property
    def timing(self) -> Timing:
        """The worker's time bounds, derived from these settings (config/timing.py)."""
        return Timing.of(self.delivery.timeout_seconds, self.worker.rate_max_wait_seconds)

    @property
    def route_table(self) -> dict[str, tuple[str, ...]]:
        """The default routing table with the `[routes]` rows put in place."""
        return {**DEFAULT_ROUTES, **self.routes}

    def vendor(self, name: str) -> VendorSettings | None:
        return getattr(self.vendors, name, None)  # type: ignore[no-any-return]

    def rate_per_second(self, vendor: str) -> float | None:
        cfg = self.vendor(vendor)
        if cfg is not None and cfg.rate_per_second is not None:
            return cfg.rate_per_second
        return DEFAULT_RATE_PER_SECOND.get(vendor)

    def secret_values(self) -> list[str]:
        """Every configured secret, so tests can prove none leaks into logs, metrics or dead letters."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, SecretStr):
                if node.get_secret_value():
                    found.append(node.get_secret_value())
            elif isinstance(node, BaseModel):
                for field in type(node).model_fields:
                    walk(getattr(node, field))
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item)
            elif isinstance(node, (list, tuple)):
                for item in node:
                    walk(item)

        walk(self)
        return found


def _interpolate(node: Any, environ: Mapping[str, str], path: str) -> Any:
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(path, f"environment variable {name} is not set")
            return environ[name]

        return _ENV_REF.sub(replace, node)
    if isinstance(node, dict):
        return {k: _interpolate(v, environ, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def _first_problem(exc: ValidationError) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"]).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return ConfigError(key, msg)


def settings_from_mapping(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from a parsed TOML mapping: `${NAME}` interpolated, REDIS_URL applied, then validated."""
    environ = os.environ if environ is None else environ
    resolved = _interpolate(dict(data), environ, "")
    if environ.get("REDIS_URL"):
        resolved["redis_url"] = environ["REDIS_URL"]
    try:
        return Settings.model_validate(resolved)
    except ValidationError as exc:
        raise _first_problem(exc) from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file named by SLUICE_CONFIG (default ./sluice.toml)."""
    environ = os.environ if environ is None else environ
    path = environ.get("SLUICE_CONFIG") or "./sluice.toml"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("SLUICE_CONFIG", f"config file {path} not found") from None
    except OSError as exc:
        raise ConfigError("SLUICE_CONFIG", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return settings_from_mapping(data, environ)


def load_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """For entry points: the settings, or one line naming the key and the problem, then exit status 2."""
    try:
        return load_settings(environ)
    except ConfigError as exc:
        print(f"sluice: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
