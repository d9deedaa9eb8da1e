"""Turns every failure into a core error and hands it to the face that owns the path."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tertulia.core.errors import (
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    TertuliaError,
    Unauthenticated,
    Unavailable,
)
from tertulia.core.monitoring import RequestTrace
from tertulia.store.session import database_failures, is_unreachable

log = logging.getLogger("tertulia.errors")


class MethodNotAllowed(TertuliaError):
    kind = "method_not_allowed"


class HttpFailure(TertuliaError):
    """An HTTP-level failure with no domain meaning (kept with its status)."""

    kind = "http"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Renderer = Callable[[Request, TertuliaError], Response]


@dataclass(frozen=True)
class ErrorDialect:
    """How one face owns paths and writes errors."""

    name: str
    owns: Callable[[str], bool]
    render: Renderer


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI's error list as `{field, reason}` pairs, with the location's first part dropped."""
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = "body"
        if location and location[0] in ("body", "query", "path", "header", "cookie"):
            where, location = location[0], location[1:]
        field = "body" if error.get("type") == "json_invalid" else ".".join(location) or "body"
        details.append({"field": field, "reason": str(error.get("msg", "invalid")), "in": where})
    return details


def as_core_error(exc: Exception) -> TertuliaError:
    if isinstance(exc, TertuliaError):
        return exc
    if isinstance(exc, RequestValidationError):
        problems = validation_details(exc.errors())
        first = problems[0] if problems else {"field": "body", "reason": "invalid"}
        return Invalid("request validation failed", {**first, "errors": problems})
    if isinstance(exc, StarletteHTTPException):
        by_status: dict[int, type[TertuliaError]] = {
            400: Invalid,
            401: Unauthenticated,
            403: Forbidden,
            404: NotFound,
            405: MethodNotAllowed,
            413: PayloadTooLarge,
        }
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        kind = by_status.get(exc.status_code)
        return kind(message) if kind else HttpFailure(exc.status_code, message)
    if is_unreachable(exc):
        # Passing: the engine's pool reconnects (pre-ping) once the database is back.
        return Unavailable("the database is not reachable; try again shortly", subsystem="store")
    return TertuliaError("internal server error")


def plain_render(request: Request, error: TertuliaError) -> Response:
    """For paths no face owns: FastAPI's own `{"detail": …}` shape."""
    status = {
        "invalid": 400,
        "unauthenticated": 401,
        "forbidden": 403,
        "not_found": 404,
        "method_not_allowed": 405,
        "conflict": 409,
        "too_large": 413,
        "rate_limited": 429,
        "quota_exceeded": 429,
        "upstream": 502,
        "unavailable": 503,
    }.get(error.kind, getattr(error, "status", 500))
    return JSONResponse({"detail": error.message}, status_code=status)


def install_error_handlers(app: FastAPI, dialects: Sequence[ErrorDialect]) -> None:
    def dialect_for(path: str) -> Renderer:
        for dialect in dialects:
            if dialect.owns(path):
                return dialect.render
        return plain_render

    async def handle(request: Request, exc: Exception) -> Response:
        error = as_core_error(exc)
        # Read from the request: an unhandled error is answered outside the middleware that
        # set the request's context.
        trace: RequestTrace | None = request.scope.get("state", {}).get("trace")
        about = {
            "account_id": trace.account_id if trace else None,
            "request_id": request_id(request),
            "details": {"error_kind": error.kind, "method": request.method, "path": request.url.path},
        }
        if error is not exc and not isinstance(exc, (RequestValidationError, StarletteHTTPException)):
            error.logged = True
            log.exception(
                "unhandled error on %s %s [%s]",
                request.method,
                request.url.path,
                request_id(request),
                exc_info=exc,
                extra=about,
            )
        response = dialect_for(request.url.path)(request, error)
        if response.status_code >= 500 and not error.logged:
            error.logged = True
            about["details"] |= {"status": response.status_code, "subsystem": error.subsystem}
            log.error("%s %s failed: %s", request.method, request.url.path, error.message, extra=about)
        if isinstance(exc, StarletteHTTPException) and exc.headers:
            for name, value in exc.headers.items():  # Allow on 405, for example
                response.headers.setdefault(name, value)
        response.headers["X-Request-ID"] = request_id(request)
        return response

    # A database failure is answered here too, not by Starlette's last-resort handler, which
    # closes the client's connection after answering (a keep-alive client then fails).
    for exc_class in (
        TertuliaError,
        RequestValidationError,
        StarletteHTTPException,
        *database_failures(),
        Exception,
    ):
        app.add_exception_handler(exc_class, handle)
