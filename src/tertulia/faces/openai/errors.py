"""OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect

PATHS = ("/v1/models", "/v1/chat/completions", "/v1/embeddings")

# Core error kind → (HTTP status, OpenAI error type, OpenAI code).
TYPES: dict[str, tuple[int, str, str | None]] = {
    "invalid": (400, "invalid_request_error", None),
    "unauthenticated": (401, "authentication_error", "invalid_api_key"),
    "forbidden": (403, "permission_error", None),
    "not_found": (404, "invalid_request_error", "not_found"),
    "method_not_allowed": (405, "invalid_request_error", "method_not_allowed"),
    "conflict": (409, "invalid_request_error", "conflict"),
    "too_large": (413, "invalid_request_error", "payload_too_large"),
    "rate_limited": (429, "rate_limit_error", "rate_limit_exceeded"),
    "quota_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "upstream": (502, "api_error", "upstream_error"),
    "unavailable": (503, "api_error", "service_unavailable"),
}


def owns(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PATHS)


def error_body(error: TertuliaError) -> tuple[int, dict[str, object]]:
    status, kind, code = TYPES.get(error.kind, (getattr(error, "status", 500), "server_error", None))
    if error.kind == "not_found" and "model" in error.details:
        code = "model_not_found"
    param = error.details.get("field")
    body = {"message": error.message, "type": kind, "param": param, "code": code}
    return status, {"error": body}


def render(request: Request, error: TertuliaError) -> Response:
    status, body = error_body(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


dialect = ErrorDialect("openai", owns, render)
