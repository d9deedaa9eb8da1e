"""OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""

import re

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


# Pydantic names the member of a union that failed inside an error's location
# ("stop.constrained-str", "content.list[TextPart]"); OpenAI's `param` is a path in the
# request itself (snake_case names and list indices), so those parts are left out.
_PARAM_PART = re.compile(r"\d+|[a-z_][a-z0-9_]*")
_UNION_MEMBERS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def _param(field: object) -> str | None:
    if not isinstance(field, str):
        return None
    parts = [part for part in field.split(".") if _PARAM_PART.fullmatch(part) and part not in _UNION_MEMBERS]
    return ".".join(parts) or None


def error_body(error: TertuliaError) -> tuple[int, dict[str, object]]:
    status, kind, code = TYPES.get(error.kind, (getattr(error, "status", 500), "server_error", None))
    if error.kind == "not_found" and "model" in error.details:
        code = "model_not_found"
    param = _param(error.details.get("field"))
    message = error.message
    if "reason" in error.details and "errors" in error.details:
        # A request that failed validation: OpenAI's envelope has no room for details,
        # so what was wrong goes into the message, as OpenAI's own errors do.
        message = f"Invalid {param or 'request'!r}: {error.details['reason']}"
    body = {"message": message, "type": kind, "param": param, "code": code}
    return status, {"error": body}


def render(request: Request, error: TertuliaError) -> Response:
    status, body = error_body(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


dialect = ErrorDialect("openai", owns, render)
