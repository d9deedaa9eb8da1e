"""The one error hierarchy; each face maps these kinds to its own envelope and status."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateLimitState:
    """Where a caller stands against its limit: what X-RateLimit-* headers report."""

    limit: int
    remaining: int
    reset: int  # epoch seconds when the window resets


SERVER_SIDE_KINDS = frozenset({"internal", "upstream", "unavailable"})


class TertuliaError(Exception):
    """A failure a client can act on. `details` carries structured context (a field, a limit);
    `subsystem` names what failed when it is not Tertulia itself ("model" for a model provider,
    the default of Unavailable and UpstreamFailed; "store" for Redis, Chroma…)."""

    kind = "internal"
    subsystem: str | None = None
    # Set once the failure is in the log (core.monitoring.log_failure), so that the layers it
    # passes through on its way out (the chat engine, a face's error handler) log it once.
    logged = False

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, *, subsystem: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if subsystem is not None:
            self.subsystem = subsystem

    @property
    def server_side(self) -> bool:
        """Whether the failure is not the client's doing: Tertulia's, or a service it needs."""
        return self.kind in SERVER_SIDE_KINDS


class Invalid(TertuliaError):
    kind = "invalid"


class Unauthenticated(TertuliaError):
    kind = "unauthenticated"


class Forbidden(TertuliaError):
    kind = "forbidden"


class NotFound(TertuliaError):
    kind = "not_found"


class Conflict(TertuliaError):
    kind = "conflict"


class PayloadTooLarge(TertuliaError):
    kind = "too_large"


class RateLimited(TertuliaError):
    kind = "rate_limited"

    def __init__(self, message: str, limit: RateLimitState) -> None:
        super().__init__(message, {"limit": limit.limit, "reset": limit.reset})
        self.limit = limit


class QuotaExceeded(TertuliaError):
    kind = "quota_exceeded"


class Unavailable(TertuliaError):
    """Something Tertulia needs is not there (a model not installed, a service down)."""

    kind = "unavailable"
    subsystem = "model"


class UpstreamFailed(TertuliaError):
    """A model provider answered badly: a refused key, a timeout, an error, a broken stream."""

    kind = "upstream"
    subsystem = "model"


__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimitState",
    "RateLimited",
    "TertuliaError",
    "Unauthenticated",
    "Unavailable",
    "UpstreamFailed",
]
