"""ChatAgent's error envelope: {"error": {code, message, details}, timestamp, request_id}."""

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect, request_id
from tertulia.store.tables import utcnow

PREFIX = "/api/v1"

# Core error kind → (HTTP status, ChatAgent code). The codes are the document's table.
CODES: dict[str, tuple[int, str]] = {
    "invalid": (400, "VALIDATION_ERROR"),
    "unauthenticated": (401, "UNAUTHORIZED"),
    "forbidden": (403, "FORBIDDEN"),
    "not_found": (404, "NOT_FOUND"),
    "method_not_allowed": (405, "METHOD_NOT_ALLOWED"),
    "conflict": (409, "DUPLICATE_RESOURCE"),
    "too_large": (413, "PAYLOAD_TOO_LARGE"),
    "rate_limited": (429, "RATE_LIMIT_EXCEEDED"),
    "quota_exceeded": (429, "QUOTA_EXCEEDED"),
    "upstream": (502, "UPSTREAM_ERROR"),
    "unavailable": (503, "SERVICE_UNAVAILABLE"),
    "internal": (500, "INTERNAL_ERROR"),
}


def owns(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def render(request: Request, error: TertuliaError) -> Response:
    status, code = CODES.get(error.kind, (getattr(error, "status", 500), "INTERNAL_ERROR"))
    body = {
        "error": {"code": code, "message": error.message, "details": error.details},
        "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
        "request_id": request_id(request),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


dialect = ErrorDialect("chatagent", owns, render)
