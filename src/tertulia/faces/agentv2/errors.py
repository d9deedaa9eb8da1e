"""Agent v2's errors: `{"error": {"code", "message"}}` with the document's statuses."""

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect

PREFIX = "/api/v2"

CODES: dict[str, tuple[int, str]] = {
    "invalid": (400, "INVALID_PARAMETERS"),
    "unauthenticated": (401, "UNAUTHORIZED"),
    "forbidden": (403, "FORBIDDEN"),
    "not_found": (404, "NOT_FOUND"),
    "method_not_allowed": (405, "METHOD_NOT_ALLOWED"),
    "conflict": (409, "CONFLICT"),
    "too_large": (413, "PAYLOAD_TOO_LARGE"),
    "rate_limited": (429, "RATE_LIMIT_EXCEEDED"),
    "quota_exceeded": (429, "RATE_LIMIT_EXCEEDED"),
    "upstream": (502, "UPSTREAM_ERROR"),
    "unavailable": (503, "SERVICE_UNAVAILABLE"),
}


def owns(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_body(error: TertuliaError) -> tuple[int, dict[str, object]]:
    status, code = CODES.get(error.kind, (getattr(error, "status", 500), "INTERNAL_ERROR"))
    return status, {"error": {"code": code, "message": error.message}}


def render(request: Request, error: TertuliaError) -> Response:
    status, body = error_body(error)
    return JSONResponse(body, status_code=status)


dialect = ErrorDialect("agentv2", owns, render)
