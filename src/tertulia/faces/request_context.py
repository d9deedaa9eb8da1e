"""ASGI middleware: a request id on every reply (and on every log line written for the
request), rate-limit headers, and the body size cap."""

import re
import secrets
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tertulia.core.errors import RateLimitState
from tertulia.core.monitoring import RequestTrace, begin_trace, end_trace

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware), so streamed replies pass through untouched."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if _CLIENT_ID.match(given) else f"req_{secrets.token_hex(12)}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        # The same trace object in the request's state and in the context of the code serving
        # it: the account, learnt later, is seen by both.
        state["trace"] = trace = RequestTrace(request_id)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                limit: RateLimitState | None = state.get("rate_limit")
                if limit is not None:
                    out["X-RateLimit-Limit"] = str(limit.limit)
                    out["X-RateLimit-Remaining"] = str(limit.remaining)
                    out["X-RateLimit-Reset"] = str(limit.reset)
                    if limit.remaining <= 0:
                        out["Retry-After"] = str(max(1, limit.reset - int(time.time())))
            await send(message)

        token = begin_trace(trace)
        await self.app(scope, self._capped(headers, receive), send_with_headers)
        # Not on an exception: the server's last-resort handler, outside this middleware,
        # answers and logs an unhandled error, and its lines must still carry the request's id
        # (a server runs each request in a task of its own, so the trace ends with it anyway).
        end_trace(token)

    def _capped(self, headers: Headers, receive: Receive) -> Receive:
        declared = headers.get("content-length")
        too_large = HTTPException(413, f"request body is larger than {self.max_body_bytes} bytes")
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            # Raised while the body is read, so the owning face renders it in its envelope.
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise too_large
            return message

        return capped_receive
