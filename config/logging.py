"""structlog, configured once per process: JSON lines on stdout, context bound per request or job.

Secrets never reach a log line because nothing logs a settings object or a header value; `redact` is a
last line of defence that drops keys whose names say they carry a secret.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

_SECRET_KEYS = frozenset(
    {"api_key", "password", "shop_secret", "api_token", "api_secret", "api_token_v2", "secret", "secrets",
     "authorization", "signature", "admin_token"}
)


def redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def render(logger: Any, method_name: str, event_dict: dict[str, Any]) -> bytes:
    """The level, the time, redaction, a traceback when there is one, and the JSON line, in one processor.

    The same line as the chain `add_log_level, TimeStamper(fmt="iso", utc=True), redact, format_exc_info,
    JSONRenderer(orjson.dumps)`, for a third less of a line's cost: structlog's price is per processor called
    (bench/README.md), and every webhook and every vendor call writes a line. orjson writes the time as the
    stamper does (RFC 3339, UTC, `Z`)."""
    structlog.processors.add_log_level(logger, method_name, event_dict)
    event_dict["timestamp"] = datetime.now(UTC)
    redact(logger, method_name, event_dict)
    if "exc_info" in event_dict:
        structlog.processors.format_exc_info(logger, method_name, event_dict)
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_UTC_Z)


def configure_logging(level: int = logging.INFO) -> None:
    """Set the structlog chain of structlog's performance guide (bytes straight to stdout, loggers cached), with
    the rendering in one processor (`render`), and send stdlib logs (arq, uvicorn) through the same steps."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        processors=[structlog.contextvars.merge_contextvars, render],
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # our own vendor_call line says more, once, without the query string (which may carry a token)
    logging.getLogger("httpx").setLevel(logging.WARNING)
