"""The one error taxonomy of sluice.

    SluiceError
    ├── ConfigError            a bad config file: names the key and the problem
    ├── VerificationError      a webhook whose signature or signing headers are wrong
    └── DeliveryError          a vendor call that did not succeed
        ├── TransientError     worth trying again later (network, timeout, 408/425/429/5xx)
        └── PermanentError     never worth trying again (other 4xx, unreadable answer, config gap)
"""

from __future__ import annotations

BODY_LIMIT = 2048


class SluiceError(Exception):
    """Base of every error sluice raises on purpose."""


class ConfigError(SluiceError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


class VerificationError(SluiceError):
    """The request is not signed by any secret of its source (the reason is for logs only)."""


class DeliveryError(SluiceError):
    error_class = "permanent"

    def __init__(self, message: str, *, status: int | None = None, body: str | bytes = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if isinstance(body, bytes):
            body = body[:BODY_LIMIT].decode("utf-8", errors="replace")
        self.body = body[:BODY_LIMIT]

    def as_dict(self) -> dict[str, object]:
        """The `error` object of a dead letter (SPEC section 5, rule 4)."""
        return {"class": self.error_class, "status": self.status, "message": self.message, "body": self.body}


class TransientError(DeliveryError):
    error_class = "transient"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | bytes = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    error_class = "permanent"
