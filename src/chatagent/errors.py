"""The SDK's exceptions: every failure the server reports, and every failure to reach it."""

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class ChatAgentError(Exception):
    """A request failed. `status_code` is the HTTP status (for a WebSocket error frame, the
    status its code stands for; None when the server was never reached), `code` the envelope's
    code (`NOT_FOUND`, `VALIDATION_ERROR` …), `details` its structured context (a field, a limit)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        where = " ".join(str(part) for part in (self.status_code, self.code) if part is not None)
        return f"{where}: {self.message}" if where else self.message


class APIConnectionError(ChatAgentError):
    """The server could not be reached, or the connection broke before it answered."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class ValidationError(ChatAgentError):
    """400 or 422: the request was refused as invalid; `details["field"]` usually says why."""


class AuthenticationError(ChatAgentError):
    """401: no credential, a wrong one, or an expired access token."""


class PermissionDeniedError(ChatAgentError):
    """403: the credential is valid but may not do this (a scoped or bot-bound API key)."""


class NotFoundError(ChatAgentError):
    """404: no such resource, or one that belongs to another account."""


class ConflictError(ChatAgentError):
    """409: the resource already exists (a username or e-mail taken)."""


class RateLimitError(ChatAgentError):
    """429: too many requests, or the token quota is spent. `retry_after` is how many seconds
    to wait before trying again, when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class ServerError(ChatAgentError):
    """5xx: the server failed, or something it needs is unavailable (a model, a store)."""


BY_STATUS: dict[int, type[ChatAgentError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}

# A WebSocket error frame carries the envelope's code but no status: the document's table.
STATUS_OF_CODE = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "DUPLICATE_RESOURCE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMIT_EXCEEDED": 429,
    "QUOTA_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "UPSTREAM_ERROR": 502,
    "SERVICE_UNAVAILABLE": 503,
}


def _error_class(status: int | None) -> type[ChatAgentError]:
    if status is None:
        return ChatAgentError
    if status >= 500:
        return ServerError
    return BY_STATUS.get(status, ChatAgentError)


def _build(
    status: int | None,
    code: str | None,
    message: str,
    details: dict[str, Any],
    request_id: str | None,
    retry_after: float | None,
) -> ChatAgentError:
    error_class = _error_class(status)
    fields: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "details": details,
        "request_id": request_id,
    }
    if error_class is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return error_class(message, **fields)


def error_from_response(response: httpx.Response) -> ChatAgentError:
    """The exception for an HTTP error reply: the document's envelope when the server sent one
    ({"error": {code, message, details}, "request_id"}), else what can be told from the reply."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    request_id = response.headers.get("x-request-id")
    if isinstance(envelope, dict):
        code = str(envelope.get("code") or f"HTTP_{response.status_code}")
        message = str(envelope.get("message") or response.reason_phrase)
        details = envelope.get("details") if isinstance(envelope.get("details"), dict) else {}
        request_id = str(body["request_id"]) if body.get("request_id") else request_id
    else:
        # Not the envelope: a proxy's page, or a server that is not ChatAgent at this URL.
        code = f"HTTP_{response.status_code}"
        said = body.get("detail") or body.get("message") if isinstance(body, dict) else None
        message = said if isinstance(said, str) else response.text.strip()[:300] or response.reason_phrase
        details = {}
    return _build(response.status_code, code, message, details, request_id, _retry_after(response.headers))


def error_from_frame(frame: dict[str, Any]) -> ChatAgentError:
    """The exception for a WebSocket `{"type": "error", "error": {code, message, details}}` frame."""
    envelope = frame.get("error") if isinstance(frame.get("error"), dict) else {}
    code = str(envelope.get("code") or "INTERNAL_ERROR")
    message = str(envelope.get("message") or frame.get("message") or "the server reported an error")
    details = envelope.get("details") if isinstance(envelope.get("details"), dict) else {}
    reset = details.get("reset")
    retry_after = max(0.0, reset - time.time()) if isinstance(reset, int | float) else None
    return _build(STATUS_OF_CODE.get(code), code, message, details, None, retry_after)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait: Retry-After (seconds or an HTTP date), else X-RateLimit-Reset (epoch)."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return None


def connection_error(error: httpx.RequestError | OSError, url: str) -> APIConnectionError:
    """A network failure, said plainly, with the httpx or socket error as its cause."""
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return APITimeoutError(f"{url} did not answer in time ({error.__class__.__name__})", code="TIMEOUT")
    reason = str(error) or error.__class__.__name__
    return APIConnectionError(f"could not reach {url}: {reason}", code="CONNECTION_ERROR")
